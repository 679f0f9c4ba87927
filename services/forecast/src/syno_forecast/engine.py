"""Entry points of the forecasting engine: a long frame in, typed forecasts (or a flat frame) out.

``forecast_series`` runs in the calling process; ``forecast_series_parallel`` fans the series out over a
process pool (darts fits one series at a time and holds the GIL, so threads would not help). Keep one pool
for the life of a replica (``make_executor``) so the ~6 s darts/statsforecast import is paid once.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import date
from functools import partial

import polars as pl

from syno_forecast.backtest import SeriesForecast, evaluate
from syno_forecast.candidates import parse_models
from syno_forecast.series import QuarterlySeries, build_quarterly_series


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
