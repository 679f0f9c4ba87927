"""The forecast service's database edge: marts in, forecast.* tables and ops.forecast_runs out, fan-out staging."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import asyncpg
import polars as pl

from syno_forecast.tables import ForecastRows
from syno_shared import bus, db
from syno_shared.errors import InputRejected
from syno_shared.events import SCHEMA_NAME_PATTERN, ForecastPublished

MART_QUERIES: dict[str, tuple[str, dict[str, type[pl.DataType]]]] = {
    "svr_rm_quarterly": (
        "select quarter, tier, quantity::float8, revenue_usd::float8 from {marts}.svr_rm_quarterly",
        {"quarter": pl.Date, "tier": pl.String, "quantity": pl.Float64, "revenue_usd": pl.Float64},
    ),
    "svr_rm_customer_quarterly": (
        "select quarter, customer, tier, quantity::float8, revenue_usd::float8 from {marts}.svr_rm_customer_quarterly",
        {
            "quarter": pl.Date,
            "customer": pl.String,
            "tier": pl.String,
            "quantity": pl.Float64,
            "revenue_usd": pl.Float64,
        },
    ),
    "c2_adoption_scorecard": (
        "select month, quarter, c2_service_family, active_customers::float8, revenue_usd::float8"
        " from {marts}.c2_adoption_scorecard",
        {
            "month": pl.Date,
            "quarter": pl.Date,
            "c2_service_family": pl.String,
            "active_customers": pl.Float64,
            "revenue_usd": pl.Float64,
        },
    ),
    "sellout_region_quarterly": (
        "select quarter, region, sum(revenue_usd)::float8 from {marts}.sellout_quarterly group by quarter, region",
        {"quarter": pl.Date, "region": pl.String, "revenue_usd": pl.Float64},
    ),
}
"""The mart reads, `{marts}` standing for the snapshot's marts schema (quoted)."""
SCHEMA_NAME = re.compile(SCHEMA_NAME_PATTERN)


async def fetch_marts(pool: asyncpg.Pool, marts_schema: str) -> dict[str, pl.DataFrame]:
    """The snapshot's mart frames, read from its own marts schema (the one marts.ready names), never from
    whatever the published names show now. An empty mart gives an empty frame with its columns."""
    if not SCHEMA_NAME.match(marts_schema):
        raise InputRejected(f"not a schema name: {marts_schema!r}", code="bad_event")
    marts = '"' + marts_schema + '"'  # the pattern admits no quote
    try:
        return {
            name: await db.fetch_frame(pool, query.format(marts=marts), schema=schema)
            for name, (query, schema) in MART_QUERIES.items()
        }
    except asyncpg.UndefinedTableError as error:
        raise InputRejected(
            f"the snapshot's marts ({marts_schema}) are no longer kept: {error}; replay its workbook.landed to"
            " build them again",
            code="marts_not_kept",
        ) from error


async def commit_run(
    pool: asyncpg.Pool, *, published: ForecastPublished, rows: ForecastRows, series_count: int
) -> None:
    """The run's effect, all or nothing: the snapshot's forecast rows replaced, the run recorded, its staging
    rows dropped and the stage's completion (with the event to publish) recorded, in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        await replace_forecasts(connection, snapshot_id=published.snapshot_id, rows=rows)
        await record_run(connection, published, series_count=series_count)
        await clear_work(connection, published.forecast_run_id)
        await db.record_completion(
            connection,
            snapshot_id=published.snapshot_id,
            stage="forecast",
            run_id=published.run_id,
            subject=bus.FORECAST_PUBLISHED,
            event_json=published.model_dump_json(),
        )


async def replace_forecasts(connection: asyncpg.Connection, *, snapshot_id: str, rows: ForecastRows) -> None:
    """A snapshot's forecast rows are replaced atomically (call inside a transaction)."""
    for table, frame in rows._asdict().items():
        await connection.execute(f"delete from forecast.{table} where snapshot_id = $1", snapshot_id)
        if frame.height:
            await db.copy_frame(connection, "forecast", table, frame)


async def record_run(connection: asyncpg.Connection, published: ForecastPublished, *, series_count: int) -> None:
    await connection.execute(
        "insert into ops.forecast_runs (forecast_run_id, run_id, snapshot_id, target_quarter, series_count,"
        " cohorts, artifact_path) values ($1, $2, $3, $4, $5, $6::jsonb, $7)",
        published.forecast_run_id,
        published.run_id,
        published.snapshot_id,
        published.target_quarter,
        series_count,
        json.dumps([cohort.model_dump() for cohort in published.cohorts]),
        published.artifact_path,
    )


# ---------------------------------------------------------------- fan-out staging

STALE_WORK = "1 day"  # batches of runs that never finished (a crashed coordinator) are dropped after this


@dataclass(frozen=True)
class WorkProgress:
    """How far a run's batches are: finished ones, and the errors of those that failed."""

    batches_done: int
    errors: list[str]


@dataclass(frozen=True)
class WorkResults:
    """The finished batches of a run: their forecasts (a JSON array each) and who worked on them."""

    payloads: list[str]
    workers: list[str]
    seconds: float


async def has_batch_result(pool: asyncpg.Pool, forecast_run_id: str, batch_number: int) -> bool:
    has_result: bool = await pool.fetchval(
        "select exists (select 1 from forecast.work_results where forecast_run_id = $1 and batch_number = $2)",
        forecast_run_id,
        batch_number,
    )
    return has_result


async def store_batch_result(
    pool: asyncpg.Pool,
    *,
    forecast_run_id: str,
    batch_number: int,
    series_count: int,
    payload: str | None,
    error: str | None,
    worker: str,
    seconds: float,
) -> None:
    """One batch's forecasts (JSON array) or its error; a redelivered batch overwrites its own row."""
    await pool.execute(
        "insert into forecast.work_results"
        " (forecast_run_id, batch_number, series_count, payload, error, worker, seconds)"
        " values ($1, $2, $3, $4::jsonb, $5, $6, $7) on conflict (forecast_run_id, batch_number) do update set"
        " series_count = excluded.series_count, payload = excluded.payload, error = excluded.error,"
        " worker = excluded.worker, seconds = excluded.seconds, created_at = now()",
        forecast_run_id,
        batch_number,
        series_count,
        payload,
        error,
        worker,
        seconds,
    )


async def work_progress(pool: asyncpg.Pool, forecast_run_id: str) -> WorkProgress:
    row = await pool.fetchrow(
        "select count(*) as batches_done, coalesce(array_agg(format('batch %s: %s', batch_number, error))"
        " filter (where error is not null), '{}') as errors from forecast.work_results where forecast_run_id = $1",
        forecast_run_id,
    )
    return WorkProgress(batches_done=int(row["batches_done"]), errors=list(row["errors"]))


async def fetch_work_results(pool: asyncpg.Pool, forecast_run_id: str) -> WorkResults:
    rows = await pool.fetch(
        "select payload::text as payload, worker, seconds from forecast.work_results"
        " where forecast_run_id = $1 and error is null order by batch_number",
        forecast_run_id,
    )
    return WorkResults(
        payloads=[row["payload"] for row in rows],
        workers=sorted({row["worker"] for row in rows}),
        seconds=sum(row["seconds"] for row in rows),
    )


async def clear_work(connection: asyncpg.Connection, forecast_run_id: str) -> None:
    """Drop a finished run's staging rows, and any left by runs that never finished."""
    await connection.execute(
        f"delete from forecast.work_results where forecast_run_id = $1 or created_at < now() - interval '{STALE_WORK}'",
        forecast_run_id,
    )
