"""The activation service's database edge: marts and forecasts in, storylines and the log out."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import polars as pl

from syno_shared import db


async def fetch_activation_snapshot(pool: asyncpg.Pool) -> pl.DataFrame:
    rows = await pool.fetch(
        "select quarter, region, customer, segment, revenue_usd::float8 as revenue_usd,"
        " qoq_change::float8 as qoq_change, yoy_change::float8 as yoy_change, has_c2, signal"
        " from marts.commercial_activation_snapshot"
    )
    return pl.DataFrame([dict(row) for row in rows]) if rows else pl.DataFrame()


async def fetch_region_forecasts(pool: asyncpg.Pool, snapshot_id: str) -> pl.DataFrame:
    """Next-quarter sell-out revenue forecast per region, shaped for `build_storylines`."""
    rows = await pool.fetch(
        "select target_quarter, region, point as forecast_revenue from forecast.sellout"
        " where snapshot_id = $1 and metric = 'revenue_usd'",
        snapshot_id,
    )
    schema = {"target_quarter": pl.Date, "region": pl.String, "forecast_revenue": pl.Float64}
    return pl.DataFrame([dict(row) for row in rows], schema=schema)


async def replace_storylines(connection: asyncpg.Connection, snapshot_id: str, storylines: pl.DataFrame) -> None:
    await connection.execute("delete from activation.storylines where snapshot_id = $1", snapshot_id)
    if storylines.height == 0:
        return
    frame = storylines.select(pl.lit(snapshot_id).alias("snapshot_id"), pl.all())
    await db.copy_frame(connection, "activation", "storylines", frame)


async def record_activation(connection: asyncpg.Connection | asyncpg.Pool, row: dict[str, Any]) -> None:
    await connection.execute(
        "insert into ops.activation_log (run_id, snapshot_id, storylines, dashboards, notifications, catalog)"
        " values ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb)",
        row["run_id"],
        row["snapshot_id"],
        row["storylines"],
        json.dumps(row["dashboards"]),
        json.dumps(row["notifications"]),
        json.dumps(row["catalog"]),
    )


async def record_alert(pool: asyncpg.Pool, row: dict[str, Any]) -> None:
    await pool.execute(
        "insert into ops.alerts (run_id, snapshot_id, stage, reason_code, message, notifications)"
        " values ($1, $2, $3, $4, $5, $6::jsonb)",
        row["run_id"],
        row["snapshot_id"],
        row["stage"],
        row["reason_code"],
        row["message"],
        json.dumps(row["notifications"]),
    )
