"""The activation service's database edge: marts and forecasts in, storylines and the logs out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Final

import asyncpg
import polars as pl

from syno_activation.report import ActivationInputs
from syno_shared import bus, db
from syno_shared.events import ActivationCompleted, DeliveryResult, PipelineFailed

ACTIVATION_SNAPSHOT_QUERY: Final = (
    "select quarter, region, customer, segment, revenue_usd::float8, qoq_change::float8, yoy_change::float8,"
    " has_c2, signal from marts.commercial_activation_snapshot"
)
ACTIVATION_SNAPSHOT_SCHEMA: Final = {
    "quarter": pl.Date,
    "region": pl.String,
    "customer": pl.String,
    "segment": pl.String,
    "revenue_usd": pl.Float64,
    "qoq_change": pl.Float64,
    "yoy_change": pl.Float64,
    "has_c2": pl.Boolean,
    "signal": pl.String,
}

REGION_FORECASTS_QUERY: Final = (
    "select target_quarter, region, point from forecast.sellout where forecast_run_id = $1 and metric = 'revenue_usd'"
)
REGION_FORECASTS_SCHEMA: Final = {"target_quarter": pl.Date, "region": pl.String, "forecast_revenue": pl.Float64}

CUSTOMER_FORECASTS_QUERY: Final = (
    "select target_quarter, customer, point from forecast.svr_rm"
    " where forecast_run_id = $1 and cohort = 'customer' and metric = 'revenue_usd' and customer is not null"
)
CUSTOMER_FORECASTS_SCHEMA: Final = {"target_quarter": pl.Date, "customer": pl.String, "forecast_revenue": pl.Float64}

C2_SCORECARD_QUERY: Final = (
    "select quarter, c2_service_family, region, revenue_usd::float8 from marts.c2_adoption_scorecard"
)
C2_SCORECARD_SCHEMA: Final = {
    "quarter": pl.Date,
    "c2_service_family": pl.String,
    "region": pl.String,
    "revenue_usd": pl.Float64,
}

# Customers buying SVR-RM in a quarter, in each region where they had revenue that quarter (the SVR-RM
# mart has no region).
SVR_RM_CUSTOMERS_QUERY: Final = (
    "select distinct svr_rm.quarter, activation.region, svr_rm.customer"
    " from marts.svr_rm_customer_quarterly as svr_rm"
    " join marts.commercial_activation_snapshot as activation"
    "  on activation.quarter = svr_rm.quarter and activation.customer = svr_rm.customer"
    "  and activation.revenue_usd > 0"
    " where svr_rm.quantity > 0"
)
SVR_RM_CUSTOMERS_SCHEMA: Final = {"quarter": pl.Date, "region": pl.String, "customer": pl.String}

# Customers with C2 in a quarter. No mart has C2 sales per customer and quarter yet: this reads the C2
# adopters (bought C2 up to the quarter) that bought anything in the quarter.
C2_CUSTOMERS_QUERY: Final = (
    "select distinct quarter, customer from marts.commercial_activation_snapshot where has_c2 and revenue_usd > 0"
)
C2_CUSTOMERS_SCHEMA: Final = {"quarter": pl.Date, "customer": pl.String}


async def fetch_inputs(pool: asyncpg.Pool, forecast_run_id: str) -> ActivationInputs:
    """The marts as published, and the forecasts of the run that published forecast.published."""
    return ActivationInputs(
        snapshot=await db.fetch_frame(pool, ACTIVATION_SNAPSHOT_QUERY, schema=ACTIVATION_SNAPSHOT_SCHEMA),
        region_forecasts=await db.fetch_frame(
            pool, REGION_FORECASTS_QUERY, forecast_run_id, schema=REGION_FORECASTS_SCHEMA
        ),
        customer_forecasts=await db.fetch_frame(
            pool, CUSTOMER_FORECASTS_QUERY, forecast_run_id, schema=CUSTOMER_FORECASTS_SCHEMA
        ),
        c2_scorecard=await db.fetch_frame(pool, C2_SCORECARD_QUERY, schema=C2_SCORECARD_SCHEMA),
        svr_rm_customers=await db.fetch_frame(pool, SVR_RM_CUSTOMERS_QUERY, schema=SVR_RM_CUSTOMERS_SCHEMA),
        c2_customers=await db.fetch_frame(pool, C2_CUSTOMERS_QUERY, schema=C2_CUSTOMERS_SCHEMA),
    )


async def replace_storylines(pool: asyncpg.Pool, snapshot_id: str, storylines: pl.DataFrame) -> None:
    """The snapshot's storylines, replaced in one transaction."""
    frame = storylines.select(pl.lit(snapshot_id).alias("snapshot_id"), pl.all())
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("delete from activation.storylines where snapshot_id = $1", snapshot_id)
        if frame.height:
            await db.copy_frame(connection, "activation", "storylines", frame)


async def record_completed(pool: asyncpg.Pool, completed: ActivationCompleted) -> None:
    """The activation log row and the stage completion, in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        await record_activation(connection, completed)
        await db.record_completion(
            connection,
            snapshot_id=completed.snapshot_id,
            stage="activation",
            run_id=completed.run_id,
            subject=bus.ACTIVATION_COMPLETED,
            event_json=completed.model_dump_json(),
        )


async def record_activation(connection: asyncpg.Connection, completed: ActivationCompleted) -> None:
    await connection.execute(
        "insert into ops.activation_log (run_id, snapshot_id, storylines, dashboards, notifications, lineage)"
        " values ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb)",
        completed.run_id,
        completed.snapshot_id,
        completed.storylines,
        json.dumps([result.model_dump() for result in completed.dashboards]),
        json.dumps([result.model_dump() for result in completed.notifications]),
        json.dumps(completed.lineage.model_dump() if completed.lineage else None),
    )


async def record_alert(pool: asyncpg.Pool, failure: PipelineFailed, notifications: Sequence[DeliveryResult]) -> None:
    await pool.execute(
        "insert into ops.alerts (run_id, snapshot_id, stage, reason_code, message, notifications)"
        " values ($1, $2, $3, $4, $5, $6::jsonb)",
        failure.run_id,
        failure.snapshot_id,
        failure.stage,
        failure.reason_code,
        failure.message,
        json.dumps([result.model_dump() for result in notifications]),
    )
