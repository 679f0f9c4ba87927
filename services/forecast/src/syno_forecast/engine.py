"""Entry points of the forecasting engine: a long frame in, typed forecasts (or a flat frame) out.

``forecast_series`` runs in the calling process; ``forecast_series_parallel`` fans the series out over a
process pool (darts fits one series at a time and holds the GIL, so threads would not help). Keep one pool
for the life of a replica (``make_executor``) so the ~6 s darts/statsforecast import is paid once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import date
from functools import partial

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from syno_forecast.backtest import SeriesForecast, evaluate
from syno_forecast.models import parse_models
from syno_forecast.series import QuarterlySeries, build_quarterly_series
from syno_forecast.training import SEPARATOR
from syno_shared.events import CohortForecast

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


def evaluate_batch(
    series: Sequence[QuarterlySeries],
    *,
    last_complete_quarter: date,
    horizon: int = 1,
    models: Sequence[str] | None = None,
) -> list[SeriesForecast]:
    """Backtest, choose and forecast each series in turn (one unit of work for a queue or pool)."""
    return [
        evaluate(item, horizon=horizon, models=models, last_complete_quarter=last_complete_quarter) for item in series
    ]


def forecast_series(
    frame: pl.DataFrame,
    *,
    last_complete_quarter: date,
    horizon: int = 1,
    models: Sequence[str] | None = None,
) -> list[SeriesForecast]:
    """One forecast per ``series_id`` in the long frame (see ``build_quarterly_series``), sorted by id."""
    parse_models(models)  # reject unknown names before any work
    series = build_quarterly_series(frame, last_complete_quarter=last_complete_quarter)
    return evaluate_batch(series, last_complete_quarter=last_complete_quarter, horizon=horizon, models=models)


def make_executor(workers: int = 2, start_method: str = "forkserver") -> ProcessPoolExecutor:
    """A process pool whose workers import the engine once, safe to start from a threaded service.

    ``forkserver`` preloads the engine in the server, so each worker forks with darts already imported.
    ``fork`` is the fastest to start from a single-threaded script.
    """
    context = multiprocessing.get_context(start_method)
    if isinstance(context, multiprocessing.context.ForkServerContext):
        context.set_forkserver_preload(["syno_forecast.backtest"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _chunks(series: Sequence[QuarterlySeries], count: int) -> list[list[QuarterlySeries]]:
    # Interleave so long and short series spread evenly; results are put back in input order afterwards.
    return [list(series[start::count]) for start in range(count) if series[start::count]]


def evaluate_parallel(
    series: Sequence[QuarterlySeries],
    *,
    last_complete_quarter: date,
    horizon: int = 1,
    models: Sequence[str] | None = None,
    workers: int = 2,
    executor: Executor | None = None,
    chunks_per_worker: int = 8,
) -> list[SeriesForecast]:
    """``evaluate_batch`` spread over processes; same results, same order as ``series``."""
    parse_models(models)
    if workers <= 1 and executor is None:
        return evaluate_batch(series, last_complete_quarter=last_complete_quarter, horizon=horizon, models=models)
    chunks = _chunks(series, max(1, workers * chunks_per_worker))
    work = partial(evaluate_batch, last_complete_quarter=last_complete_quarter, horizon=horizon, models=models)
    if executor is not None:
        parts = list(executor.map(work, chunks))
    else:
        with make_executor(workers) as pool:
            parts = list(pool.map(work, chunks))
    by_id = {result.series_id: result for part in parts for result in part}
    return [by_id[item.series_id] for item in series]


def forecast_series_parallel(
    frame: pl.DataFrame,
    *,
    last_complete_quarter: date,
    horizon: int = 1,
    models: Sequence[str] | None = None,
    workers: int = 2,
    executor: Executor | None = None,
) -> list[SeriesForecast]:
    """``forecast_series`` spread over processes; same results, same order.

    Pass a long-lived ``executor`` (``make_executor``) to avoid starting a pool per call.
    """
    parse_models(models)
    series = build_quarterly_series(frame, last_complete_quarter=last_complete_quarter)
    return evaluate_parallel(
        series,
        last_complete_quarter=last_complete_quarter,
        horizon=horizon,
        models=models,
        workers=workers,
        executor=executor,
    )


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


def forecast_frame(
    frame: pl.DataFrame,
    last_complete_quarter: date,
    *,
    horizon: int = 1,
    models: Sequence[str] | None = None,
    workers: int = 1,
    executor: Executor | None = None,
) -> pl.DataFrame:
    """``forecast_series`` (parallel when ``workers`` > 1 or an executor is given) as a flat frame."""
    results = forecast_series_parallel(
        frame,
        last_complete_quarter=last_complete_quarter,
        horizon=horizon,
        models=models,
        workers=workers,
        executor=executor,
    )
    return to_frame(results)


# ---------------------------------------------------------------- accuracy per cohort


class CohortMetrics(BaseModel):
    """Holdout accuracy of one cohort of series and whether it meets its sMAPE threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort: str = Field(description="Cohort name.")
    series_count: int = Field(ge=0, description="Series forecast in the cohort.")
    backtested_count: int = Field(ge=0, description="Series with a holdout (the rest had too little history).")
    mape_mean: float | None = Field(description="Mean MAPE over series where it is defined.")
    mape_median: float | None = Field(description="Median MAPE over series where it is defined.")
    mape_count: int = Field(ge=0, description="Series with a defined MAPE (no zero actual held out).")
    smape_mean: float | None = Field(description="Mean sMAPE.")
    smape_median: float | None = Field(description="Median sMAPE.")
    mase_mean: float | None = Field(description="Mean MASE over series where it is defined.")
    mase_median: float | None = Field(description="Median MASE over series where it is defined.")
    baseline_smape_mean: float | None = Field(description="Mean sMAPE of seasonal naive on the same quarters.")
    threshold_smape: float | None = Field(description="Configured limit on the mean sMAPE (None: no limit).")
    is_threshold_met: bool = Field(description="Mean sMAPE within the limit; False when it cannot be shown.")

    def to_event(self) -> CohortForecast:
        """The cohort summary carried by forecast.published."""
        return CohortForecast(
            cohort=self.cohort,
            series_count=self.series_count,
            holdout_mape=self.mape_mean,
            holdout_smape=self.smape_mean,
            baseline_smape=self.baseline_smape_mean,
            threshold_smape=self.threshold_smape,
            is_threshold_met=self.is_threshold_met,
        )


def _metrics_frame(results: Mapping[str, Sequence[SeriesForecast]]) -> pl.DataFrame:
    rows = [
        {
            "cohort": cohort,
            "series_id": result.series_id,
            "holdout_mape": result.metrics.mape if result.metrics else None,
            "holdout_smape": result.metrics.smape if result.metrics else None,
            "holdout_mase": result.metrics.mase if result.metrics else None,
            "baseline_smape": result.baseline_smape,
        }
        for cohort, members in results.items()
        for result in members
    ]
    schema = {"cohort": pl.String, "series_id": pl.String} | {
        name: pl.Float64 for name in ("holdout_mape", "holdout_smape", "holdout_mase", "baseline_smape")
    }
    return pl.DataFrame(rows, schema=schema)


def _summarise(per_series: pl.DataFrame, thresholds: Mapping[str, float]) -> list[CohortMetrics]:
    """Aggregate a (cohort, series_id, holdout_*, baseline_smape) frame with one row per series."""
    table = (
        per_series.lazy()
        .group_by("cohort")
        .agg(
            pl.len().alias("series_count"),
            pl.col("holdout_smape").is_not_null().sum().alias("backtested_count"),
            pl.col("holdout_mape").mean().alias("mape_mean"),
            pl.col("holdout_mape").median().alias("mape_median"),
            pl.col("holdout_mape").is_not_null().sum().alias("mape_count"),
            pl.col("holdout_smape").mean().alias("smape_mean"),
            pl.col("holdout_smape").median().alias("smape_median"),
            pl.col("holdout_mase").mean().alias("mase_mean"),
            pl.col("holdout_mase").median().alias("mase_median"),
            pl.col("baseline_smape").mean().alias("baseline_smape_mean"),
        )
        .sort("cohort")
        .collect()
    )
    summaries = []
    for row in table.iter_rows(named=True):
        threshold = thresholds.get(row["cohort"])
        met = threshold is None or (row["smape_mean"] is not None and row["smape_mean"] <= threshold)
        summaries.append(CohortMetrics(**row, threshold_smape=threshold, is_threshold_met=met))
    return summaries


def cohort_metrics(
    results: Mapping[str, Sequence[SeriesForecast]], thresholds: Mapping[str, float]
) -> list[CohortMetrics]:
    """Mean and median MAPE, sMAPE and MASE per cohort, and whether the mean sMAPE meets its threshold.

    ``results`` maps a cohort name to its series' forecasts; ``thresholds`` maps a cohort to its sMAPE
    limit (cohorts without one always meet it). Undefined metrics (None) are left out of the averages.
    """
    return _summarise(_metrics_frame(results), thresholds)


def summarise_cohorts(forecasts: pl.DataFrame, thresholds: Mapping[str, float] | None = None) -> list[CohortForecast]:
    """forecast.published cohort summaries from a ``forecast_frame`` output; cohort = series_id prefix."""
    per_series = (
        forecasts.lazy()
        .group_by("series_id")
        .agg(pl.col("holdout_mape", "holdout_smape", "holdout_mase", "baseline_smape").first())
        .with_columns(pl.col("series_id").str.split(SEPARATOR).list.first().alias("cohort"))
        .collect()
    )
    return [summary.to_event() for summary in _summarise(per_series, thresholds or {})]
