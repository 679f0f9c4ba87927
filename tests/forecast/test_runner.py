"""The one engine path: batches through a replica's BatchRunner give the forecasts of one process, in any split."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import date

from syno_forecast.backtest import evaluate
from syno_forecast.results import SeriesForecast
from syno_forecast.runner import BatchRunner
from syno_forecast.series import QuarterlySeries
from syno_forecast.workqueue import make_batches

START = date(2022, 1, 1)
LAST_COMPLETE = date(2023, 10, 1)
BASELINES = ["seasonal_naive", "drift"]


def series(count: int) -> list[QuarterlySeries]:
    return [
        QuarterlySeries(f"s{number}", START, (10.0 + number, 12, 15.0 + number, 11, 11, 13, 16, 12.0 + number), None, 0)
        for number in range(count)
    ]


async def run_batches(
    processes: int, items: list[QuarterlySeries], batch_series: int
) -> tuple[list[SeriesForecast], int]:
    runner = BatchRunner(processes, name="test", start_method="fork")
    try:
        batches = make_batches(
            items,
            forecast_run_id="f1",
            run_id="r1",
            snapshot_id="s1",
            last_complete_quarter=LAST_COMPLETE,
            batch_series=batch_series,
            models=BASELINES,
        )
        parts = await asyncio.gather(*(runner.evaluate(batch) for batch in batches))
    finally:
        await runner.stop()
    return sorted(
        (result for part in parts for result in part), key=lambda result: result.series_id
    ), runner.batches_done


def test_a_process_pool_gives_the_forecasts_of_one_process() -> None:
    """Six series in three batches over two worker processes: each series' forecast is exactly what
    evaluating it alone gives, and every batch was counted."""
    items = series(6)
    alone = [evaluate(item, models=BASELINES, last_complete_quarter=LAST_COMPLETE) for item in items]
    pooled, batches_done = asyncio.run(run_batches(2, items, batch_series=2))
    assert (pooled, batches_done) == (alone, 3)


def test_a_thread_runner_gives_the_same_forecasts() -> None:
    """processes=0 (one thread in the service process, as in the stage tests) is the same engine."""
    items = series(3)
    alone = [evaluate(item, models=BASELINES, last_complete_quarter=LAST_COMPLETE) for item in items]
    threaded, batches_done = asyncio.run(run_batches(0, items, batch_series=5))
    assert (threaded, batches_done) == (alone, 1)


def test_the_pool_starts_with_the_first_batch_and_stops_when_idle() -> None:
    """No worker process before the first batch; the pool is stopped after the idle period and a later
    batch starts a new one, with the same forecasts."""
    items = series(2)

    async def scenario() -> tuple[list[bool], int, list[SeriesForecast], list[SeriesForecast]]:
        runner = BatchRunner(1, name="test", start_method="fork", idle_seconds=0.3)
        [batch] = make_batches(
            items,
            forecast_run_id="f1",
            run_id="r1",
            snapshot_id="s1",
            last_complete_quarter=LAST_COMPLETE,
            batch_series=5,
            models=BASELINES,
        )
        seen = [runner.is_pool_running]
        try:
            first = await runner.evaluate(batch)
            seen.append(runner.is_pool_running)
            await asyncio.sleep(1.0)
            seen.append(runner.is_pool_running)
            second = await runner.evaluate(batch)
            seen.append(runner.is_pool_running)
        finally:
            await runner.stop()
        seen.append(runner.is_pool_running)
        return seen, runner.pools_started, first, second

    seen, pools_started, first, second = asyncio.run(scenario())
    assert (seen, pools_started) == ([False, True, False, True, False], 2)
    assert first == second == [evaluate(item, models=BASELINES, last_complete_quarter=LAST_COMPLETE) for item in items]


def test_the_service_process_does_not_import_the_engine() -> None:
    """The service (app factory, handlers, coordinator, work queue, runner) runs without statsforecast or
    darts in its own process: only the pool's workers load them."""
    code = (
        "import sys\n"
        "from syno_forecast.main import create_app\n"
        "from syno_forecast import coordinator, handlers, runner, tables, workqueue\n"
        "print(sorted(name for name in ('statsforecast', 'darts', 'torch', 'statsmodels') if name in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert loaded.stdout.strip() == "[]"
