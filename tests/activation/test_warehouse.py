"""The activation warehouse edge against the embedded PostgreSQL: marts and forecasts in, storylines and logs out.

The `pool` fixture (conftest) holds the marts the project's dbt builds from the raw lines of activation_marts,
whose rows are worked out there by hand, and two forecast runs.
"""

from __future__ import annotations

import json
from unittest.mock import ANY

import asyncpg
import polars as pl
import pytest
from activation_marts import (
    C2_CUSTOMERS_ROWS,
    C2_SCORECARD_ROWS,
    FORECAST_RUN,
    MART_TABLES,
    Q3,
    Q4,
    SNAPSHOT_MARTS,
    SNAPSHOT_ROWS,
    SVR_RM_CUSTOMERS_ROWS,
    SVR_RM_REVENUE_ROWS,
)
from polars.testing import assert_frame_equal

from syno_activation import warehouse
from syno_activation.deliverer import queued
from syno_activation.outbox import message_entries, run_entries
from syno_activation.rendering import Message
from syno_activation.report import build_report
from syno_activation.storylines import STORYLINE_TABLE_SCHEMA
from syno_shared.errors import InputRejected
from syno_shared.events import ActivationCompleted, DeliveryResult, PipelineFailed

pytestmark = pytest.mark.integration

SNAP_1, SNAP_2 = "1" * 64, "2" * 64  # events carry sha256-shaped snapshot ids
STORYLINES = pl.DataFrame(schema=STORYLINE_TABLE_SCHEMA)


def frame(rows: list[tuple[object, ...]], schema: dict[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=schema, orient="row")


async def test_inputs_are_the_snapshots_marts_and_the_forecasts_of_the_event_run(pool: asyncpg.Pool) -> None:
    """The stable names show other (empty) marts: only the schema the event names holds the snapshot."""
    assert [await pool.fetchval(f"select count(*) from marts.{table}") for table in MART_TABLES] == [0, 0, 0]

    inputs = await warehouse.fetch_inputs(pool, marts_schema=SNAPSHOT_MARTS, forecast_run_id=FORECAST_RUN)

    assert_frame_equal(
        inputs.snapshot, frame(SNAPSHOT_ROWS, warehouse.ACTIVATION_SNAPSHOT_SCHEMA), check_row_order=False
    )
    no_interval = {"lower_80": [None], "upper_80": [None]}
    assert_frame_equal(
        inputs.region_forecasts,
        pl.DataFrame(
            {"target_quarter": [Q4], "region": ["FR"], "forecast_revenue": [184_000.0], **no_interval},
            schema=warehouse.REGION_FORECASTS_SCHEMA,
        ),
    )
    assert_frame_equal(
        inputs.customer_forecasts,
        pl.DataFrame(
            {"target_quarter": [Q4], "customer": ["Acme"], "forecast_revenue": [130_000.0], **no_interval},
            schema=warehouse.CUSTOMER_FORECASTS_SCHEMA,
        ),
    )
    assert_frame_equal(
        inputs.c2_scorecard, frame(C2_SCORECARD_ROWS, warehouse.C2_SCORECARD_SCHEMA), check_row_order=False
    )
    assert sorted(inputs.svr_rm_customers.rows()) == SVR_RM_CUSTOMERS_ROWS
    assert sorted(inputs.c2_customers.rows()) == C2_CUSTOMERS_ROWS
    assert sorted(inputs.svr_rm_revenue.rows()) == SVR_RM_REVENUE_ROWS


async def test_the_accounts_behind_a_storyline_show_their_country_and_last_order(pool: asyncpg.Pool) -> None:
    """Acme and Dune, FR's SVR-RM buyers without C2 in Q3 2025, ordered last on 15 August and 1 September."""
    inputs = await warehouse.fetch_inputs(pool, marts_schema=SNAPSHOT_MARTS, forecast_run_id=FORECAST_RUN)
    [cross_sell] = (
        build_report(inputs, target_quarter=Q4)
        .storylines.filter(pl.col("is_current_quarter") & (pl.col("lever") == "cross_sell_c2"))
        .iter_rows(named=True)
    )

    accounts = json.loads(cross_sell["accounts"])
    assert sorted((a["customer"], a["country"], a["last_order_date"]) for a in accounts) == [
        ("Acme", "France", "2025-08-15"),
        ("Dune", "France", "2025-09-01"),
        ("Hugo", "France", "2025-09-07"),
    ]


async def test_a_build_made_before_the_mart_had_country_and_last_order_is_read_with_them_null(
    pool: asyncpg.Pool,
) -> None:
    """A kept build from before the dbt change (a rollback can publish it) lacks the columns: null, no error."""
    await pool.execute(
        f"alter table {SNAPSHOT_MARTS}.commercial_activation_snapshot drop column country,"
        " drop column last_order_date, drop column c2_revenue_usd"
    )
    inputs = await warehouse.fetch_inputs(pool, marts_schema=SNAPSHOT_MARTS, forecast_run_id=FORECAST_RUN)

    assert inputs.snapshot.height == len(SNAPSHOT_ROWS)
    assert inputs.snapshot.select(pl.col("country", "last_order_date", "c2_revenue_usd").null_count()).row(0) == (
        len(SNAPSHOT_ROWS),
        len(SNAPSHOT_ROWS),
        len(SNAPSHOT_ROWS),
    )


async def test_a_marts_schema_that_is_gone_is_rejected_with_its_name(pool: asyncpg.Pool) -> None:
    with pytest.raises(InputRejected, match="'marts_dropped_since' does not exist") as raised:
        await warehouse.fetch_inputs(pool, marts_schema="marts_dropped_since", forecast_run_id=FORECAST_RUN)
    assert raised.value.code == "marts_missing"


@pytest.mark.parametrize("name", ['marts"; drop schema ops cascade; --', "Marts", "marts.x", "", "1marts", "m" * 64])
def test_a_marts_schema_is_quoted_only_when_it_is_a_schema_name(name: str) -> None:
    assert warehouse.quote_schema("marts_2025_ab12") == '"marts_2025_ab12"'
    with pytest.raises(InputRejected):
        warehouse.quote_schema(name)


async def test_storylines_are_replaced_with_their_opportunities_accounts_and_narratives(pool: asyncpg.Pool) -> None:
    """Q3 2025 from the raw lines of activation_marts, by hand:

    - FR / SVR-RM buyer (Acme 125K, Beta 30K, Dune 50K, Hugo 10.5K: material): Acme, Dune and Hugo have no C2; FR
      sold C2 BACKUP BUSINESS to 1 customer for 10K in Q3: 3 x 10K = 30K, and none of FR's 3 SVR-RM buyers has C2.
      FR's Q4 forecast (184K, no interval) is 25.1% below FR's 245.5K, at least 10%: a fall of 61.5 / 245.5 on
      Dune, Beta and Hugo (90.5K: 22,671.08); Acme is judged on its own forecast (130K > 125K): not at risk.
      Beta fell 50K -> 30K: 20K.
    - Anecdotal cells: Cielo (FR / Desktop only) grows 20K -> 30K, the median T1 buyer spent 50K (125K, 50K,
      10.5K): 50K; and 30K x 61.5 / 245.5 = 7,515.27 to protect. DE / Other (Edda, Fjord): Fjord 20K -> 10K; Edda
      dormant, 8K a year ago: 2K. DE / C2 only: Gala 10K -> 5K.
    History: Edda's 8K decline in Q4 2024, and Acme and Hugo without C2 in Q2 (2 x 10K). 10 rows in all.
    """
    inputs = await warehouse.fetch_inputs(pool, marts_schema=SNAPSHOT_MARTS, forecast_run_id=FORECAST_RUN)
    report = build_report(inputs, target_quarter=Q4)
    async with pool.acquire() as connection:
        await warehouse.replace_storylines(connection, "snap-1", report.storylines)
        await warehouse.replace_storylines(connection, "snap-1", report.storylines)  # a replay writes the same rows

    assert await pool.fetchval("select count(*) from activation.storylines where snapshot_id = 'snap-1'") == 10
    current = await pool.fetch(
        "select opportunity_rank, region, segment, lever, usd_at_stake, is_anecdotal from activation.storylines"
        " where snapshot_id = 'snap-1' and is_current_quarter order by opportunity_rank"
    )
    assert [tuple(row.values()) for row in current] == [
        (1, "FR", "SVR-RM buyer", "cross_sell_c2", 30_000.0, False),
        (2, "FR", "SVR-RM buyer", "protect_pipeline", 22_671.08, False),
        (3, "FR", "SVR-RM buyer", "win_back", 20_000.0, False),
        (4, "FR", "Desktop only", "upsell_rackmount", 50_000.0, True),
        (5, "DE", "Other", "win_back", 10_000.0, True),
        (6, "FR", "Desktop only", "protect_pipeline", 7_515.27, True),
        (7, "DE", "C2 only", "win_back", 5_000.0, True),
        (8, "DE", "Other", "re_engage", 2_000.0, True),
    ]
    # Every storyline's accounts add up to its revenue and its money at stake.
    sums = await pool.fetch(
        "select actual_revenue, usd_at_stake, customers,"
        " (select sum((a ->> 'revenue_usd')::float8) from jsonb_array_elements(accounts) a) as accounts_revenue,"
        " (select sum((a ->> 'usd_at_stake')::float8) from jsonb_array_elements(accounts) a) as accounts_at_stake,"
        " jsonb_array_length(accounts) as accounts from activation.storylines where snapshot_id = 'snap-1'"
    )
    assert all(
        abs(row["actual_revenue"] - row["accounts_revenue"]) < 0.005
        and abs(row["usd_at_stake"] - row["accounts_at_stake"]) < 0.005
        and row["customers"] == row["accounts"]
        for row in sums
    )

    row = await pool.fetchrow(
        "select customers, actual_revenue, previous_revenue, year_ago_revenue, forecast_revenue, variance_pct,"
        " usd_at_stake, is_anecdotal, confidence, activation_score, recommended_action, confidence_note,"
        " accounts::text, region_narrative, customer_narratives from activation.storylines"
        " where snapshot_id = 'snap-1' and quarter = $1 and region = 'FR' and segment = 'SVR-RM buyer'"
        " and lever = 'cross_sell_c2'",
        Q3,
    )
    quarter_at_stake = 30_000.0 + 22_671.08 + 20_000.0 + 50_000.0 + 10_000.0 + 7_515.27 + 5_000.0 + 2_000.0
    assert dict(row) | {"accounts": None, "region_narrative": None, "customer_narratives": None} == {
        "customers": 3,
        "actual_revenue": 185_500.0,
        "previous_revenue": 110_000.0,  # Acme 100K, Hugo 10K, Dune new
        "year_ago_revenue": 0.0,
        "forecast_revenue": round(184_000.0 * 185_500.0 / 245_500.0, 2),
        "variance_pct": round((184_000.0 / 245_500.0 - 1.0) * 100.0, 1),  # -25.1
        "usd_at_stake": 30_000.0,
        "is_anecdotal": False,
        "confidence": "medium",
        "activation_score": round(100.0 * 30_000.0 / quarter_at_stake, 1),  # 20.4
        "recommended_action": "Cross-sell C2 BACKUP BUSINESS to 3 SVR-RM buyers without C2 (0.0% of FR SVR-RM "
        "buyers have C2)",
        "confidence_note": "Estimate: 3 x $10.0K, the C2 revenue per SVR-RM buyer with C2 in FR in Q3 2025.",
        "accounts": None,
        "region_narrative": None,
        "customer_narratives": None,
    }

    def account(
        customer: str, last_order: str, revenue: float, previous: float, svr_rm: float, forecast: float | None
    ) -> object:
        return {"customer": customer, "country": "France", "last_order_quarter": "2025-07-01",
                "last_order_date": last_order,
                "revenue_usd": revenue, "previous_revenue_usd": previous, "year_ago_revenue_usd": 0.0,
                "usd_at_stake": 10_000.0, "buys": "SVR-RM T1, no C2", "svr_rm_revenue_usd": svr_rm,
                "svr_rm_forecast_usd": forecast}  # fmt: skip

    assert json.loads(row["accounts"]) == [
        account("Acme", "2025-08-15", 125_000.0, 100_000.0, 125_000.0, 130_000.0),
        account("Dune", "2025-09-01", 50_000.0, 0.0, 50_000.0, None),
        account("Hugo", "2025-09-07", 10_500.0, 10_000.0, 10_500.0, None),
    ]
    assert row["region_narrative"].startswith("FR in Q3 2025: revenue $245.5K (QoQ +36.4%, YoY n/a)")
    assert [line.split(" (")[0] for line in row["customer_narratives"].splitlines()] == ["Acme", "Dune", "Beta", "Hugo"]
    assert row["customer_narratives"].splitlines()[0].endswith("Next quarter (Q4 2025) SVR-RM forecast $130.0K.")


async def test_a_run_is_recorded_with_queued_deliveries_then_with_their_results(pool: asyncpg.Pool) -> None:
    lineage = DeliveryResult(target="openlineage:file", is_ok=True, detail="4 run events")
    summary = Message(title="syno: forecasts", body="**Forecast**")
    entries = run_entries(
        run_id="run-1",
        snapshot_id=SNAP_1,
        summary=summary,
        notify_channels=["json:aa"],
        metabase_channel="metabase:bb",
    )
    recorded = ActivationCompleted(
        run_id="run-1",
        snapshot_id=SNAP_1,
        storylines=0,
        dashboards=[queued(entries[0].key)],
        notifications=[queued(entries[1].key)],
        lineage=lineage,
    )
    activation_log_id = await warehouse.record_run(
        pool, storylines=STORYLINES.clear(), entries=entries, completed=recorded
    )

    outbox_rows = await pool.fetch(
        "select run_id, reference, channel, kind, snapshot_id, payload::text, status, attempts"
        " from ops.activation_outbox order by kind"
    )
    assert [(*row.values(),) for row in outbox_rows] == [
        ("run-1", "", "metabase:bb", "metabase", SNAP_1, ANY, "pending", 0),
        ("run-1", "", "json:aa", "summary", SNAP_1, ANY, "pending", 0),
    ]
    assert [json.loads(row["payload"]) for row in outbox_rows] == [
        {"snapshot_id": SNAP_1},
        {"title": "syno: forecasts", "body": "**Forecast**", "severity": "info"},
    ]
    assert await recorded_completion(pool) == recorded

    completed = recorded.model_copy(
        update={
            "dashboards": [DeliveryResult(target="metabase:card_refresh", is_ok=False, detail="HTTP 500")],
            "notifications": [DeliveryResult(target="json", is_ok=True, detail="delivered to json://127.0.0.1")],
        }
    )
    await warehouse.record_delivered(pool, activation_log_id, completed)

    logged = await pool.fetchrow("select dashboards::text, notifications::text, lineage::text from ops.activation_log")
    assert [json.loads(value) for value in logged.values()] == [
        [{"target": "metabase:card_refresh", "is_ok": False, "detail": "HTTP 500"}],
        [{"target": "json", "is_ok": True, "detail": "delivered to json://127.0.0.1"}],
        {"target": "openlineage:file", "is_ok": True, "detail": "4 run events"},
    ]
    assert await recorded_completion(pool) == completed


async def test_an_alert_is_recorded_once_per_failed_input(pool: asyncpg.Pool) -> None:
    failure = PipelineFailed(
        run_id="run-2",
        snapshot_id=SNAP_2,
        stage="transform",
        reason_code="dbt_test_failed",
        message="3 duplicate rows",
        is_retryable=False,
        input_reference="marts.ready:17",
    )
    other_input = failure.model_copy(update={"input_reference": "marts.ready:18", "message": "again"})
    for each in (failure, failure, other_input):  # the first failure is delivered twice
        entries = message_entries(
            run_id=each.run_id,
            snapshot_id=each.snapshot_id,
            kind="alert",
            message=Message(title="failed", body=each.message, severity="failure"),
            channels=["json:aa"],
            reference=each.input_reference,
        )
        await warehouse.record_alert(pool, each, entries, [queued(entries[0].key)])
    await warehouse.record_alert_delivered(pool, failure, [DeliveryResult(target="json", is_ok=True, detail="sent")])

    alerts = await pool.fetch(
        "select input_reference, stage, reason_code, message, notifications::text from ops.alerts"
        " order by input_reference"
    )
    assert [(*row.values(),) for row in alerts] == [
        ("marts.ready:17", "transform", "dbt_test_failed", "3 duplicate rows", ANY),
        ("marts.ready:18", "transform", "dbt_test_failed", "again", ANY),
    ]
    assert [json.loads(row["notifications"]) for row in alerts] == [
        [{"target": "json", "is_ok": True, "detail": "sent"}],
        [{"target": "json", "is_ok": False, "detail": "queued: in the outbox, to be sent"}],
    ]
    assert await pool.fetch("select reference, kind, status from ops.activation_outbox order by reference") == [
        ("marts.ready:17", "alert", "pending"),
        ("marts.ready:18", "alert", "pending"),
    ]


async def recorded_completion(pool: asyncpg.Pool) -> ActivationCompleted:
    event_json = await pool.fetchval(
        "select output_event::text from ops.stage_completions where snapshot_id = $1 and stage = 'activation'", SNAP_1
    )
    return ActivationCompleted.model_validate_json(event_json)
