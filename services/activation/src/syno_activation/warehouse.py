"""The activation service's database edge: marts and forecasts in; storylines, the outbox and the logs out.

The marts are read from the schema forecast.published names (`marts_schema`: the snapshot's own marts), never
from the stable `marts.*` names, which may show another snapshot by the time activation runs. The mart queries
below name that schema `{marts}`; `mart_query` fills it in, quoted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Final

import asyncpg
import polars as pl

from syno_activation import outbox
from syno_activation.accuracy import PreviousAccuracy
from syno_activation.inputs import ActivationInputs
from syno_activation.outbox import OutboxEntry
from syno_shared import bus, db
from syno_shared.errors import InputRejected
from syno_shared.events import (
    PUBLISHED,
    SCHEMA_NAME_PATTERN,
    ActivationCompleted,
    DeliveryResult,
    ForecastPublished,
    PipelineFailed,
)

# `country`, `last_order_date` and `c2_revenue_usd` are read when the mart has them (a build made before they
# existed has not; see docs/ACTIVATION.md), else null.
ACTIVATION_SNAPSHOT_QUERY: Final = (
    "select quarter, region, customer, segment, revenue_usd::float8, qoq_change::float8, yoy_change::float8,"
    " has_c2, signal, {country} as country, {last_order_date} as last_order_date, {c2_revenue_usd} as c2_revenue_usd"
    " from {marts}.commercial_activation_snapshot"
)
OPTIONAL_SNAPSHOT_COLUMNS: Final = {"country": "text", "last_order_date": "date", "c2_revenue_usd": "float8"}
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
    "country": pl.String,
    "last_order_date": pl.Date,
    "c2_revenue_usd": pl.Float64,
}

REGION_FORECASTS_QUERY: Final = (
    "select target_quarter, region, point, lower_80, upper_80 from forecast.sellout"
    " where forecast_run_id = $1 and metric = 'revenue_usd'"
)
REGION_FORECASTS_SCHEMA: Final = {
    "target_quarter": pl.Date,
    "region": pl.String,
    "forecast_revenue": pl.Float64,
    "lower_80": pl.Float64,
    "upper_80": pl.Float64,
}

CUSTOMER_FORECASTS_QUERY: Final = (
    "select target_quarter, customer, point, lower_80, upper_80 from forecast.svr_rm"
    " where forecast_run_id = $1 and cohort = 'customer' and metric = 'revenue_usd' and customer is not null"
)
CUSTOMER_FORECASTS_SCHEMA: Final = {
    "target_quarter": pl.Date,
    "customer": pl.String,
    "forecast_revenue": pl.Float64,
    "lower_80": pl.Float64,
    "upper_80": pl.Float64,
}

C2_SCORECARD_QUERY: Final = (
    "select month, quarter, c2_service_family, c2_plan, region, active_customers::bigint, revenue_usd::float8"
    " from {marts}.c2_adoption_scorecard"
)
C2_SCORECARD_SCHEMA: Final = {
    "month": pl.Date,
    "quarter": pl.Date,
    "c2_service_family": pl.String,
    "c2_plan": pl.String,
    "region": pl.String,
    "active_customers": pl.Int64,
    "revenue_usd": pl.Float64,
}

SVR_RM_REVENUE_QUERY: Final = (
    "select quarter, customer, tier, quantity::bigint, revenue_usd::float8 from {marts}.svr_rm_customer_quarterly"
)
SVR_RM_REVENUE_SCHEMA: Final = {
    "quarter": pl.Date,
    "customer": pl.String,
    "tier": pl.String,
    "quantity": pl.Int64,
    "revenue_usd": pl.Float64,
}

# Customers buying SVR-RM in a quarter, in each region where they had revenue that quarter (the SVR-RM
# mart has no region).
SVR_RM_CUSTOMERS_QUERY: Final = (
    "select distinct svr_rm.quarter, activation.region, svr_rm.customer"
    " from {marts}.svr_rm_customer_quarterly as svr_rm"
    " join {marts}.commercial_activation_snapshot as activation"
    "  on activation.quarter = svr_rm.quarter and activation.customer = svr_rm.customer"
    "  and activation.revenue_usd > 0"
    " where svr_rm.quantity > 0"
)
SVR_RM_CUSTOMERS_SCHEMA: Final = {"quarter": pl.Date, "region": pl.String, "customer": pl.String}

# Customers with C2 in a quarter. No mart has C2 sales per customer and quarter yet: this reads the C2
# adopters (bought C2 up to the quarter) that bought anything in the quarter.
C2_CUSTOMERS_QUERY: Final = (
    "select distinct quarter, customer from {marts}.commercial_activation_snapshot where has_c2 and revenue_usd > 0"
)
C2_CUSTOMERS_SCHEMA: Final = {"quarter": pl.Date, "customer": pl.String}


_SCHEMA_NAME: Final = re.compile(SCHEMA_NAME_PATTERN)


def quote_schema(name: str) -> str:
    """`name` as a double-quoted SQL identifier, once it matches the events' schema-name pattern (lower-case
    letters, digits and underscores: nothing that could end the quotes). asyncpg binds values, not identifiers."""
    if not _SCHEMA_NAME.fullmatch(name):
        raise InputRejected(f"marts schema {name!r} is not a schema name ({SCHEMA_NAME_PATTERN})", code="bad_event")
    return f'"{name}"'


def mart_query(query: str, marts_schema: str, **columns: str) -> str:
    """A mart query reading the snapshot's marts in `marts_schema` (`columns` fill the query's other fields)."""
    return query.format(marts=quote_schema(marts_schema), **columns)


def snapshot_query(marts_schema: str, mart_columns: Collection[str]) -> str:
    """The activation snapshot read, with each optional column read where the mart has it, else null."""
    optional = {
        name: f"{name if name in mart_columns else 'null'}::{sql_type}"
        for name, sql_type in OPTIONAL_SNAPSHOT_COLUMNS.items()
    }
    return mart_query(ACTIVATION_SNAPSHOT_QUERY, marts_schema, **optional)


async def fetch_inputs(pool: asyncpg.Pool, *, marts_schema: str, forecast_run_id: str) -> ActivationInputs:
    """The snapshot's marts (in `marts_schema`, as forecast.published names it) and the forecasts of the run
    that published it, read in one read-only repeatable-read transaction (one consistent view of both)."""
    quote_schema(marts_schema)  # a name that is no schema name is rejected before any SQL sees it
    async with pool.acquire() as connection, connection.transaction(isolation="repeatable_read", readonly=True):
        if await connection.fetchval("select to_regnamespace($1)", marts_schema) is None:
            raise InputRejected(
                f"the snapshot's marts schema {marts_schema!r} does not exist (dropped since, or never built)",
                code="marts_missing",
            )

        async def marts(query: str, schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
            return await db.fetch_frame(connection, mart_query(query, marts_schema), schema=schema)

        snapshot_columns = await connection.fetch(
            "select column_name from information_schema.columns"
            " where table_schema = $1 and table_name = 'commercial_activation_snapshot'",
            marts_schema,
        )
        snapshot = await db.fetch_frame(
            connection,
            snapshot_query(marts_schema, {row["column_name"] for row in snapshot_columns}),
            schema=ACTIVATION_SNAPSHOT_SCHEMA,
        )

        async def forecasts(query: str, schema: Mapping[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
            return await db.fetch_frame(connection, query, forecast_run_id, schema=schema)

        return ActivationInputs(
            snapshot=snapshot,
            region_forecasts=await forecasts(REGION_FORECASTS_QUERY, REGION_FORECASTS_SCHEMA),
            customer_forecasts=await forecasts(CUSTOMER_FORECASTS_QUERY, CUSTOMER_FORECASTS_SCHEMA),
            c2_scorecard=await marts(C2_SCORECARD_QUERY, C2_SCORECARD_SCHEMA),
            svr_rm_customers=await marts(SVR_RM_CUSTOMERS_QUERY, SVR_RM_CUSTOMERS_SCHEMA),
            c2_customers=await marts(C2_CUSTOMERS_QUERY, C2_CUSTOMERS_SCHEMA),
            svr_rm_revenue=await marts(SVR_RM_REVENUE_QUERY, SVR_RM_REVENUE_SCHEMA),
        )


async def previous_accuracy(pool: asyncpg.Pool, *, forecast_run_id: str) -> PreviousAccuracy | None:
    """The previous published forecast run's holdout sMAPE per cohort: the latest published run recorded before
    `forecast_run_id` was (before now, when it was never recorded). None before any."""
    rows = await pool.fetch(
        "with this_run as (select min(recorded_at) as recorded_at from activation.forecast_accuracy"
        "  where forecast_run_id = $1),"
        " previous as (select forecast_run_id from activation.forecast_accuracy, this_run"
        "  where is_published and forecast_run_id <> $1"
        "   and activation.forecast_accuracy.recorded_at < coalesce(this_run.recorded_at, now())"
        "  order by activation.forecast_accuracy.recorded_at desc, forecast_run_id desc limit 1)"
        " select forecast_run_id, target_quarter, cohort, holdout_smape from activation.forecast_accuracy"
        " where forecast_run_id = (select forecast_run_id from previous)",
        forecast_run_id,
    )
    if not rows:
        return None
    return PreviousAccuracy(
        forecast_run_id=rows[0]["forecast_run_id"],
        target_quarter=rows[0]["target_quarter"],
        smape={row["cohort"]: row["holdout_smape"] for row in rows},
    )


async def record_accuracy(connection: asyncpg.Connection, forecast: ForecastPublished) -> None:
    """The run's holdout accuracy per cohort, kept for the next run to compare with (inside the caller's
    transaction); a run already recorded keeps its rows."""
    is_published = forecast.publication in PUBLISHED
    await connection.executemany(
        "insert into activation.forecast_accuracy (forecast_run_id, cohort, run_id, snapshot_id, target_quarter,"
        " series_count, holdout_smape, baseline_smape, is_published) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " on conflict (forecast_run_id, cohort) do nothing",
        [
            (forecast.forecast_run_id, cohort.cohort, forecast.run_id, forecast.snapshot_id, forecast.target_quarter,
             cohort.series_count, cohort.holdout_smape, cohort.baseline_smape, is_published)
            for cohort in forecast.cohorts
        ],
    )  # fmt: skip


async def replace_storylines(connection: asyncpg.Connection, snapshot_id: str, storylines: pl.DataFrame) -> None:
    """The snapshot's storylines, replaced (inside the caller's transaction)."""
    frame = storylines.select(pl.lit(snapshot_id).alias("snapshot_id"), pl.all())
    await connection.execute("delete from activation.storylines where snapshot_id = $1", snapshot_id)
    if frame.height:
        await db.copy_frame(connection, "activation", "storylines", frame)


async def record_run(
    pool: asyncpg.Pool,
    *,
    storylines: pl.DataFrame,
    entries: Sequence[OutboxEntry],
    completed: ActivationCompleted,
    forecast: ForecastPublished | None = None,
) -> int:
    """The stage's writes in one transaction: the snapshot's storylines, the forecast run's accuracy (`forecast`),
    its deliveries queued in the outbox, the activation log row and the stage completion (deliveries reported as
    queued). Returns the log row's id."""
    async with pool.acquire() as connection, connection.transaction():
        await replace_storylines(connection, completed.snapshot_id, storylines)
        if forecast is not None:
            await record_accuracy(connection, forecast)
        await outbox.enqueue(connection, entries)
        activation_log_id = await record_activation(connection, completed)
        await _record_completion(connection, completed)
    return activation_log_id


async def record_delivered(pool: asyncpg.Pool, activation_log_id: int, completed: ActivationCompleted) -> None:
    """The delivery results, on the run's activation log row and its recorded completion."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "update ops.activation_log set dashboards = $2::jsonb, notifications = $3::jsonb"
            " where activation_log_id = $1",
            activation_log_id,
            _results_json(completed.dashboards),
            _results_json(completed.notifications),
        )
        await _record_completion(connection, completed)


async def _record_completion(connection: asyncpg.Connection, completed: ActivationCompleted) -> None:
    await db.record_completion(
        connection,
        snapshot_id=completed.snapshot_id,
        stage="activation",
        run_id=completed.run_id,
        subject=bus.ACTIVATION_COMPLETED,
        event_json=completed.model_dump_json(),
    )


def _results_json(results: Sequence[DeliveryResult]) -> str:
    return json.dumps([result.model_dump() for result in results])


async def record_activation(connection: asyncpg.Connection, completed: ActivationCompleted) -> int:
    activation_log_id: int = await connection.fetchval(
        "insert into ops.activation_log (run_id, snapshot_id, storylines, dashboards, notifications, lineage)"
        " values ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb) returning activation_log_id",
        completed.run_id,
        completed.snapshot_id,
        completed.storylines,
        _results_json(completed.dashboards),
        _results_json(completed.notifications),
        json.dumps(completed.lineage.model_dump() if completed.lineage else None),
    )
    return activation_log_id


async def record_alert(
    pool: asyncpg.Pool,
    failure: PipelineFailed,
    entries: Sequence[OutboxEntry],
    notifications: Sequence[DeliveryResult],
) -> None:
    """The alert row (one per failed input: a redelivered failure finds it) and its deliveries queued in the
    outbox, in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "insert into ops.alerts (run_id, snapshot_id, stage, reason_code, message, notifications, input_reference)"
            " values ($1, $2, $3, $4, $5, $6::jsonb, $7) on conflict (run_id, input_reference) do nothing",
            failure.run_id,
            failure.snapshot_id,
            failure.stage,
            failure.reason_code,
            failure.message,
            _results_json(notifications),
            failure.input_reference,
        )
        await outbox.enqueue(connection, entries)


async def record_alert_delivered(
    pool: asyncpg.Pool, failure: PipelineFailed, notifications: Sequence[DeliveryResult]
) -> None:
    await pool.execute(
        "update ops.alerts set notifications = $3::jsonb where run_id = $1 and input_reference = $2",
        failure.run_id,
        failure.input_reference,
        _results_json(notifications),
    )
