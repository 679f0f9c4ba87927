"""The activation warehouse edge against the embedded PostgreSQL: marts and forecasts in, storylines and logs out.

The `pool` fixture (conftest) holds the marts the project's dbt builds from the raw lines of activation_marts,
whose rows are worked out there by hand, and two forecast runs.
"""

from __future__ import annotations

import json

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
from syno_activation.report import build_report
from syno_shared.errors import InputRejected
from syno_shared.events import ActivationCompleted, DeliveryResult, PipelineFailed

pytestmark = pytest.mark.integration


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
    await warehouse.replace_storylines(pool, "snap-1", report.storylines)
    await warehouse.replace_storylines(pool, "snap-1", report.storylines)  # a redelivery writes the same rows

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


async def test_activation_log_and_alerts_record_the_delivery_results(pool: asyncpg.Pool) -> None:
    lineage = DeliveryResult(target="openlineage:file", is_ok=True, detail="4 run events")
    completed = ActivationCompleted(
        run_id="run-1",
        snapshot_id="snap-1",
        storylines=6,
        dashboards=[DeliveryResult(target="metabase:card_refresh", is_ok=False, detail="HTTP 500")],
        notifications=[],
        lineage=lineage,
    )
    async with pool.acquire() as connection:
        await warehouse.record_activation(connection, completed)
    failure = PipelineFailed(
        run_id="run-2",
        snapshot_id="snap-2",
        stage="transform",
        reason_code="dbt_test_failed",
        message="3 duplicate rows",
        is_retryable=False,
        input_reference="workbook.landed:snap-2",
    )
    await warehouse.record_alert(pool, failure, [DeliveryResult(target="json", is_ok=True, detail="delivered")])

    logged = await pool.fetchrow("select storylines, dashboards::text, lineage::text from ops.activation_log")
    assert (logged["storylines"], json.loads(logged["dashboards"]), json.loads(logged["lineage"])) == (
        6,
        [{"target": "metabase:card_refresh", "is_ok": False, "detail": "HTTP 500"}],
        {"target": "openlineage:file", "is_ok": True, "detail": "4 run events"},
    )
    alert = await pool.fetchrow("select stage, reason_code, notifications::text from ops.alerts")
    assert (alert["stage"], alert["reason_code"], json.loads(alert["notifications"])) == (
        "transform",
        "dbt_test_failed",
        [{"target": "json", "is_ok": True, "detail": "delivered"}],
    )
