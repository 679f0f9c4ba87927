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
    assert_frame_equal(
        inputs.region_forecasts,
        pl.DataFrame({"target_quarter": [Q4], "region": ["FR"], "forecast_revenue": [184_000.0]}),
    )
    assert_frame_equal(
        inputs.customer_forecasts,
        pl.DataFrame({"target_quarter": [Q4], "customer": ["Acme"], "forecast_revenue": [130_000.0]}),
    )
    assert_frame_equal(
        inputs.c2_scorecard, frame(C2_SCORECARD_ROWS, warehouse.C2_SCORECARD_SCHEMA), check_row_order=False
    )
    assert sorted(inputs.svr_rm_customers.rows()) == SVR_RM_CUSTOMERS_ROWS
    assert sorted(inputs.c2_customers.rows()) == C2_CUSTOMERS_ROWS


async def test_a_marts_schema_that_is_gone_is_rejected_with_its_name(pool: asyncpg.Pool) -> None:
    with pytest.raises(InputRejected, match="'marts_dropped_since' does not exist") as raised:
        await warehouse.fetch_inputs(pool, marts_schema="marts_dropped_since", forecast_run_id=FORECAST_RUN)
    assert raised.value.code == "marts_missing"


@pytest.mark.parametrize("name", ['marts"; drop schema ops cascade; --', "Marts", "marts.x", "", "1marts", "m" * 64])
def test_a_marts_schema_is_quoted_only_when_it_is_a_schema_name(name: str) -> None:
    assert warehouse.quote_schema("marts_2025_ab12") == '"marts_2025_ab12"'
    with pytest.raises(InputRejected):
        warehouse.quote_schema(name)


async def test_storylines_are_replaced_with_their_narratives(pool: asyncpg.Pool) -> None:
    """FR's SVR-RM buyers in Q3 2025: Acme 125K, Dune 50K, Beta 30K and Hugo 10.5K (215.5K of FR's 245.5K; Q2:
    160K); FR's Q4 forecast of 184K is shared by revenue; Acme, Dune and Hugo buy SVR-RM without C2."""
    inputs = await warehouse.fetch_inputs(pool, marts_schema=SNAPSHOT_MARTS, forecast_run_id=FORECAST_RUN)
    report = build_report(inputs, target_quarter=Q4)
    async with pool.acquire() as connection:
        await warehouse.replace_storylines(connection, "snap-1", report.storylines)
        await warehouse.replace_storylines(connection, "snap-1", report.storylines)  # a replay writes the same rows

    # Five quarters of DE / Other (Edda from Q3 2024), and four cells in each of Q2 and Q3 2025.
    assert await pool.fetchval("select count(*) from activation.storylines where snapshot_id = 'snap-1'") == 11
    row = await pool.fetchrow(
        "select actual_revenue, forecast_revenue, variance_pct, activation_score, recommended_action,"
        " confidence_note, region_narrative, customer_narratives from activation.storylines"
        " where snapshot_id = 'snap-1' and quarter = $1 and region = 'FR' and segment = 'SVR-RM buyer'",
        Q3,
    )
    variance = round((184_000.0 / 245_500.0 - 1.0) * 100.0, 1)  # -25.1
    score = round(100.0 * (0.25 * 3 / 4 + 0.20 * -variance / 100.0), 1)  # no decline, no dormant account
    assert dict(row) | {"region_narrative": None, "customer_narratives": None} == {
        "actual_revenue": 215_500.0,
        "forecast_revenue": round(184_000.0 * 215_500.0 / 245_500.0, 2),
        "variance_pct": variance,
        "activation_score": score,
        "recommended_action": "Cross-sell C2 to SVR-RM buyers",
        "confidence_note": "Region forecast allocated by revenue share.",
        "region_narrative": None,
        "customer_narratives": None,
    }
    assert row["region_narrative"].startswith("FR in Q3 2025: revenue $245.5K (QoQ +36.4%, YoY n/a)")
    assert [line.split(" (")[0] for line in row["customer_narratives"].splitlines()] == ["Acme", "Dune", "Beta", "Hugo"]
    assert row["customer_narratives"].splitlines()[0].endswith("Next quarter (Q4 2025) SVR-RM forecast $130.0K.")


async def test_a_run_is_recorded_with_queued_deliveries_then_with_their_results(pool: asyncpg.Pool) -> None:
    lineage = DeliveryResult(target="openlineage:file", is_ok=True, detail="4 run events")
    summary = Message(title="syno: forecasts", body="**Forecast**")
    entries = run_entries(
        run_id="run-1",
        snapshot_id="snap-1",
        summary=summary,
        notify_channels=["json:aa"],
        metabase_channel="metabase:bb",
    )
    recorded = ActivationCompleted(
        run_id="run-1",
        snapshot_id="snap-1",
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
        ("run-1", "", "metabase:bb", "metabase", "snap-1", ANY, "pending", 0),
        ("run-1", "", "json:aa", "summary", "snap-1", ANY, "pending", 0),
    ]
    assert [json.loads(row["payload"]) for row in outbox_rows] == [
        {"snapshot_id": "snap-1"},
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
        snapshot_id="snap-2",
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
        "select output_event::text from ops.stage_completions where snapshot_id = 'snap-1' and stage = 'activation'"
    )
    return ActivationCompleted.model_validate_json(event_json)
