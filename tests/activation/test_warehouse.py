"""The activation warehouse edge against the embedded PostgreSQL: marts and forecasts in, storylines and logs out.

The marts are created here as dbt builds them (only the columns activation reads, named as in dbt), so
the test pins the queries, not the dbt models.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import polars as pl
import pytest
from activation_samples import Q2, Q3, Q4, c2_scorecard, snapshot
from polars.testing import assert_frame_equal

from syno_activation import warehouse
from syno_activation.report import build_report
from syno_shared import db, migrate
from syno_shared.events import ActivationCompleted, DeliveryResult, PipelineFailed

pytestmark = pytest.mark.integration

MARTS_DDL = """
create schema marts;
create table marts.commercial_activation_snapshot (
    quarter date, region text, customer text, segment text, revenue_usd double precision,
    qoq_change double precision, yoy_change double precision, has_c2 boolean, signal text
);
create table marts.c2_adoption_scorecard (
    month date, quarter date, service_family text, c2_plan text, region text, customer_tier text,
    active_customers bigint, new_orders bigint, revenue_usd double precision, quantity bigint,
    avg_seats double precision
);
create table marts.svr_rm_customer_quarterly (
    quarter date, customer text, tier text, quantity bigint, revenue_usd double precision,
    customer_rank bigint, is_top_customer boolean
);
"""

INSERT_SELLOUT = (
    "insert into forecast.sellout (forecast_run_id, snapshot_id, cohort, target_quarter, metric, point, model,"
    " reason, region) values ($1, 's', 'region', $2, $3, $4, 'ets', '', $5)"
)
INSERT_SVR_RM = (
    "insert into forecast.svr_rm (forecast_run_id, snapshot_id, cohort, target_quarter, metric, point, model,"
    " reason, tier, customer) values ($1, 's', $2, $3, $4, $5, 'ets', '', $6, $7)"
)


@pytest.fixture
async def pool(isolated_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    sources = migrate.installed_sources(("ops", "activation", "forecast"))
    await asyncio.to_thread(migrate.apply_migrations, isolated_pg_dsn, sources)
    connection_pool = await db.create_pool(isolated_pg_dsn)
    try:
        await fill_marts_and_forecasts(connection_pool)
        yield connection_pool
    finally:
        await connection_pool.close()


async def fill_marts_and_forecasts(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        await connection.execute(MARTS_DDL)
        await db.copy_frame(connection, "marts", "commercial_activation_snapshot", snapshot())
        await db.copy_frame(connection, "marts", "c2_adoption_scorecard", c2_scorecard())
        await connection.executemany(
            "insert into marts.svr_rm_customer_quarterly values ($1, $2, 'T1', $3, $4, 1, true)",
            [
                (Q2, "Acme", 2, 100_000.0),
                (Q3, "Acme", 3, 120_000.0),
                (Q3, "Beta", 0, 0.0),  # returns cancel the quarter's purchases: not buying SVR-RM
                (Q3, "Dune", 1, 50_000.0),
                (Q3, "Ghost", 1, 9_000.0),  # no revenue in the activation snapshot that quarter
            ],
        )
        await connection.executemany(
            INSERT_SELLOUT,
            [
                ("run-f1", Q4, "revenue_usd", 184_000.0, "FR"),
                ("run-f1", Q4, "quantity", 99.0, "FR"),
                ("run-f0", Q4, "revenue_usd", 1.0, "DE"),  # an older forecast run of the same snapshot
            ],
        )
        await connection.executemany(
            INSERT_SVR_RM,
            [
                ("run-f1", "customer", Q4, "revenue_usd", 130_000.0, "TOTAL", "Acme"),
                ("run-f1", "customer", Q4, "quantity", 4.0, "TOTAL", "Acme"),
                ("run-f1", "overall", Q4, "revenue_usd", 500_000.0, "T1", None),
            ],
        )


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
        c2_scorecard().select("quarter", "service_family", "region", "revenue_usd"),
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
