"""The forecast service's database edge: marts in, forecast.* tables and ops.forecast_runs out."""

from __future__ import annotations

import io
import json
from typing import Any

import asyncpg
import polars as pl

FORECAST_DDL = """
create schema if not exists forecast;
create table if not exists forecast.svr_rm (
    forecast_run_id text not null, snapshot_id text not null, cohort text not null, tier text not null,
    customer text, target_quarter date not null, metric text not null,
    point double precision not null, lower_80 double precision, upper_80 double precision,
    lower_95 double precision, upper_95 double precision, model text not null, reason text not null,
    holdout_mape double precision, holdout_smape double precision, holdout_mase double precision,
    baseline_smape double precision
);
create table if not exists forecast.c2 (
    forecast_run_id text not null, snapshot_id text not null, cohort text not null, service_family text not null,
    customer text, target_quarter date not null, metric text not null,
    point double precision not null, lower_80 double precision, upper_80 double precision,
    lower_95 double precision, upper_95 double precision, model text not null, reason text not null,
    holdout_mape double precision, holdout_smape double precision, holdout_mase double precision,
    baseline_smape double precision
);
create table if not exists ops.forecast_runs (
    forecast_run_id text primary key, run_id text not null, snapshot_id text not null,
    target_quarter date, series_count integer not null, cohorts jsonb not null, artifact_path text,
    created_at timestamptz not null default now()
);
"""


async def fetch_marts(pool: asyncpg.Pool) -> dict[str, pl.DataFrame]:
    queries = {
        "svr_rm_quarterly": "select quarter, tier, quantity::float8 as quantity, revenue_usd::float8 as revenue_usd"
        " from marts.svr_rm_quarterly",
        "svr_rm_customer_quarterly": "select quarter, customer, tier, quantity::float8 as quantity,"
        " revenue_usd::float8 as revenue_usd from marts.svr_rm_customer_quarterly",
        "c2_adoption_scorecard": "select month, quarter, service_family, active_customers::float8 as active_customers,"
        " revenue_usd::float8 as revenue_usd from marts.c2_adoption_scorecard",
    }
    frames = {}
    for name, query in queries.items():
        rows = await pool.fetch(query)
        frames[name] = pl.DataFrame([dict(row) for row in rows]) if rows else pl.DataFrame()
    return frames


async def _copy(connection: asyncpg.Connection, table: str, frame: pl.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.write_csv(buffer, null_value=r"\N", include_header=False)
    buffer.seek(0)
    await connection.copy_to_table(
        table, schema_name="forecast", source=buffer, columns=frame.columns, format="csv", null=r"\N"
    )


async def replace_forecasts(
    connection: asyncpg.Connection, *, snapshot_id: str, svr_rm: pl.DataFrame, c2: pl.DataFrame
) -> None:
    """A snapshot's forecast rows are replaced atomically (call inside a transaction)."""
    for table, frame in (("svr_rm", svr_rm), ("c2", c2)):
        await connection.execute(f"delete from forecast.{table} where snapshot_id = $1", snapshot_id)
        if frame.height:
            await _copy(connection, table, frame)


async def record_run(connection: asyncpg.Connection, row: dict[str, Any]) -> None:
    await connection.execute(
        "insert into ops.forecast_runs (forecast_run_id, run_id, snapshot_id, target_quarter, series_count,"
        " cohorts, artifact_path) values ($1, $2, $3, $4, $5, $6::jsonb, $7)",
        row["forecast_run_id"],
        row["run_id"],
        row["snapshot_id"],
        row["target_quarter"],
        row["series_count"],
        json.dumps(row["cohorts"]),
        row["artifact_path"],
    )
