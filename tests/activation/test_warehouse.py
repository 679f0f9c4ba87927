"""The activation warehouse edge against the embedded PostgreSQL: marts and forecasts in, storylines and logs out.

The `pool` fixture (conftest) creates the marts as dbt builds them (only the columns activation reads,
named as in dbt) and fills them with the sample snapshot, so the test pins the queries, not the dbt models.
"""

from __future__ import annotations

import json

import asyncpg
import polars as pl
import pytest
from activation_samples import Q2, Q3, Q4, c2_scorecard, snapshot
from polars.testing import assert_frame_equal

from syno_activation import warehouse
from syno_activation.report import build_report
from syno_shared.events import ActivationCompleted, DeliveryResult, PipelineFailed

pytestmark = pytest.mark.integration


async def test_inputs_are_the_marts_and_the_forecasts_of_the_event_run(pool: asyncpg.Pool) -> None:
    inputs = await warehouse.fetch_inputs(pool, "run-f1")

    assert_frame_equal(inputs.snapshot, snapshot(), check_row_order=False)
    assert_frame_equal(
        inputs.region_forecasts,
        pl.DataFrame({"target_quarter": [Q4], "region": ["FR"], "forecast_revenue": [184_000.0]}),
    )
    assert_frame_equal(
        inputs.customer_forecasts,
        pl.DataFrame({"target_quarter": [Q4], "customer": ["Acme"], "forecast_revenue": [130_000.0]}),
    )
    assert_frame_equal(
        inputs.c2_scorecard,
        c2_scorecard().select("quarter", "c2_service_family", "region", "revenue_usd"),
        check_row_order=False,
    )
    assert sorted(inputs.svr_rm_customers.rows()) == [(Q2, "FR", "Acme"), (Q3, "FR", "Acme"), (Q3, "FR", "Dune")]
    assert sorted(inputs.c2_customers.rows()) == [(Q2, "Beta"), (Q3, "Beta")]  # the one C2 adopter, active


async def test_storylines_are_replaced_with_their_narratives(pool: asyncpg.Pool) -> None:
    report = build_report(await warehouse.fetch_inputs(pool, "run-f1"), target_quarter=Q4)
    await warehouse.replace_storylines(pool, "snap-1", report.storylines)
    await warehouse.replace_storylines(pool, "snap-1", report.storylines)  # a redelivery writes the same rows

    rows = await pool.fetch(
        "select region, segment, region_narrative, customer_narratives from activation.storylines"
        " where snapshot_id = 'snap-1' and quarter = $1 order by region, segment",
        Q3,
    )
    assert await pool.fetchval("select count(*) from activation.storylines") == 6
    fr_svr_rm = rows[2]
    assert (fr_svr_rm["region"], fr_svr_rm["segment"]) == ("FR", "SVR-RM buyer")
    assert fr_svr_rm["region_narrative"].startswith("FR in Q3 2025: revenue $230.0K")
    assert fr_svr_rm["customer_narratives"].splitlines()[0].endswith("Next quarter (Q4 2025) SVR-RM forecast $130.0K.")


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
