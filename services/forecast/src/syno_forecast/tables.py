"""The engine's forecasts as rows: one flat frame, then the rows of each forecast table (svr_rm, c2, sellout)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import NamedTuple

import polars as pl

from syno_forecast.results import SeriesForecast
from syno_forecast.training import SEPARATOR
from syno_shared.events import TierForecast

FORECAST_TABLES: tuple[str, ...] = ("forecast.svr_rm", "forecast.c2", "forecast.sellout")
FORECAST_COLUMNS: Mapping[str, type[pl.DataType] | pl.DataType] = {
    "series_id": pl.String,
    "target_quarter": pl.Date,
    "point": pl.Float64,
    "lower_80": pl.Float64,
    "upper_80": pl.Float64,
    "lower_95": pl.Float64,
    "upper_95": pl.Float64,
    "model": pl.String,
    "description": pl.String,
    "reason": pl.String,
    "interval_method": pl.String,
    "holdout_mape": pl.Float64,
    "holdout_smape": pl.Float64,
    "holdout_mase": pl.Float64,
    "baseline_smape": pl.Float64,
    "history_quarters": pl.Int64,
    "actual_to_date": pl.Float64,
}
# Columns every forecast table has after its key columns.
_TABLE_COLUMNS = (
    "target_quarter",
    "metric",
    "point",
    "lower_80",
    "upper_80",
    "lower_95",
    "upper_95",
    "model",
    "reason",
    "holdout_mape",
    "holdout_smape",
    "holdout_mase",
    "baseline_smape",
)


class ForecastRows(NamedTuple):
    """A run's rows for each forecast table (field name = table name in the forecast schema)."""

    svr_rm: pl.DataFrame
    c2: pl.DataFrame
    sellout: pl.DataFrame


def to_frame(results: Sequence[SeriesForecast]) -> pl.DataFrame:
    """One row per series and target quarter, with the holdout metrics repeated on each row."""
    rows = [
        {
            "series_id": result.series_id,
            "target_quarter": row.target_quarter,
            "point": row.point,
            "lower_80": row.lower_80,
            "upper_80": row.upper_80,
            "lower_95": row.lower_95,
            "upper_95": row.upper_95,
            "model": result.model,
            "description": result.description,
            "reason": result.reason,
            "interval_method": result.interval_method,
            "holdout_mape": result.metrics.mape if result.metrics else None,
            "holdout_smape": result.metrics.smape if result.metrics else None,
            "holdout_mase": result.metrics.mase if result.metrics else None,
            "baseline_smape": result.baseline_smape,
            "history_quarters": result.history_quarters,
            "actual_to_date": result.actual_to_date,
        }
        for result in results
        for row in result.forecasts
    ]
    return pl.DataFrame(rows, schema=dict(FORECAST_COLUMNS))


def table_rows(forecasts: pl.DataFrame, *, forecast_run_id: str, snapshot_id: str) -> ForecastRows:
    """Split ``to_frame`` output into forecast.svr_rm, forecast.c2 and forecast.sellout rows."""
    parts = forecasts.with_columns(
        pl.col("series_id")
        .str.split_exact(SEPARATOR, 2)
        .struct.rename_fields(["cohort", "key", "metric"])
        .alias("parts")
    ).unnest("parts")
    head = [pl.lit(forecast_run_id).alias("forecast_run_id"), pl.lit(snapshot_id).alias("snapshot_id")]
    svr_rm = parts.filter(pl.col("cohort").is_in(["overall", "customer"])).select(
        *head,
        "cohort",
        pl.when(pl.col("cohort") == "overall").then(pl.col("key")).otherwise(pl.lit("TOTAL")).alias("tier"),
        pl.when(pl.col("cohort") == "customer").then(pl.col("key")).alias("customer"),
        *_TABLE_COLUMNS,
    )
    c2 = parts.filter(pl.col("cohort") == "c2").select(
        *head,
        "cohort",
        pl.col("key").alias("service_family"),
        pl.lit(None, pl.String).alias("customer"),
        *_TABLE_COLUMNS,
    )
    sellout = parts.filter(pl.col("cohort") == "region").select(
        *head, "cohort", pl.col("key").alias("region"), *_TABLE_COLUMNS
    )
    return ForecastRows(svr_rm=svr_rm, c2=c2, sellout=sellout)


def tier_forecasts(svr_rm: pl.DataFrame) -> list[TierForecast]:
    """The headline numbers for forecast.published: each SVR-RM tier (and the total), per metric."""
    return [
        TierForecast(
            tier=row["tier"],
            metric=row["metric"],
            point=row["point"],
            lower_80=row["lower_80"],
            upper_80=row["upper_80"],
            model=row["model"],
        )
        for row in svr_rm.filter(pl.col("cohort") == "overall").sort("tier", "metric").iter_rows(named=True)
    ]


def target_quarter(forecasts: pl.DataFrame) -> date | None:
    """The (first) quarter forecast; None when there was nothing to forecast."""
    first = forecasts["target_quarter"].min()
    return first if isinstance(first, date) else None
