"""The one way series are forecast: batches of series, evaluated in a replica's process pool.

The service evaluates every batch it takes from the work queue through a ``BatchRunner``; the benchmarks
run the same batches through the same runner in-process, so what they time is what the service runs.
The models hold the GIL, so batches run in processes (threads would not help).

The pool is started on demand, by the first batch, and stopped after ``idle_seconds`` without a batch, so
an idle replica holds no worker processes. The engine (statsforecast, ~6 s of imports and most of a
worker's memory) is imported only inside the workers: this module, the work queue and the coordinator
never import it, so the service process stays small.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from functools import partial
from typing import TYPE_CHECKING

from syno_forecast.results import SeriesForecast
from syno_forecast.series import QuarterlySeries
from syno_shared.errors import TransientError
from syno_shared.logging import get_logger

if TYPE_CHECKING:
    from syno_forecast.workqueue import WorkBatch

WARM_UP_SERIES = QuarterlySeries(
    "warm-up", date(2020, 1, 1), tuple(10.0 + step + 3.0 * (step % 4) for step in range(20)), None, 0
)


def evaluate_batch(
    series: Sequence[QuarterlySeries],
    *,
    last_complete_quarter: date,
    horizon: int = 1,
    models: Sequence[str] | None = None,
) -> list[SeriesForecast]:
    """Backtest, choose and forecast each series of a batch in turn (what one pool worker does)."""
    from syno_forecast.backtest import evaluate  # the engine: imported in the worker only

    return [
        evaluate(item, horizon=horizon, models=models, last_complete_quarter=last_complete_quarter) for item in series
    ]


def warm_engine() -> float:
    """Import the engine and fit every model once (their first calls compile code); returns the seconds."""
    started = time.perf_counter()
    evaluate_batch([WARM_UP_SERIES], last_complete_quarter=date(2024, 10, 1), models=["combination"])
    return time.perf_counter() - started


def make_executor(processes: int, start_method: str = "forkserver") -> ProcessPoolExecutor:
    """A process pool safe to start from a threaded service.

    ``forkserver`` forks each worker from a small server process that imports nothing heavy (no preload:
    the engine is imported by the workers, which end with the pool, so its memory goes with them);
    ``fork`` is the fastest to start from a single-threaded script.
    """
    context = multiprocessing.get_context(start_method)
    if isinstance(context, multiprocessing.context.ForkServerContext):
        context.set_forkserver_preload([])
    return ProcessPoolExecutor(max_workers=processes, mp_context=context)


class BatchRunner:
    """One replica's engine: a process pool started on demand (or, with ``processes=0``, a thread)."""

    def __init__(
        self,
        processes: int,
        *,
        name: str | None = None,
        start_method: str = "forkserver",
        idle_seconds: float | None = None,
    ) -> None:
        self.processes = processes
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.start_method = start_method
        self.idle_seconds = idle_seconds
        self.executor: ProcessPoolExecutor | None = None
        self.batches_done = 0
        self.pools_started = 0
        self._active = 0
        self._release: asyncio.TimerHandle | None = None
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def concurrency(self) -> int:
        """Batches this replica works on at once."""
        return max(1, self.processes)

    @property
    def is_pool_running(self) -> bool:
        return self.executor is not None

    def _ensure_pool(self) -> ProcessPoolExecutor | None:
        if self.processes > 0 and self.executor is None:
            self.executor = make_executor(self.processes, self.start_method)
            self.pools_started += 1
            get_logger().info("forecast_pool_started", processes=self.processes, worker=self.name)
        return self.executor

    async def warm_up(self) -> float:
        """Start the pool now and load the engine in every worker (or in this process, without a pool).

        Returns the seconds it took. The service does not call it (its pool starts with the first batch);
        the benchmarks do, to time pool start-up apart from forecasting.
        """
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        executor = self._ensure_pool()
        await asyncio.gather(*(loop.run_in_executor(executor, warm_engine) for _ in range(self.concurrency)))
        self._schedule_release()
        return time.perf_counter() - started

    async def stop(self) -> None:
        """Stop the pool (if any) and wait for it; the next batch starts a new one."""
        self._cancel_release()
        if self._stopping:
            await asyncio.gather(*self._stopping)
        executor, self.executor = self.executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    def _cancel_release(self) -> None:
        if self._release is not None:
            self._release.cancel()
            self._release = None

    def _schedule_release(self) -> None:
        """After ``idle_seconds`` without a batch, stop the pool and free its memory."""
        self._cancel_release()
        if self.idle_seconds is None or self.executor is None or self._active:
            return
        self._release = asyncio.get_running_loop().call_later(self.idle_seconds, self._release_idle_pool)

    def _release_idle_pool(self) -> None:
        self._release = None
        if self._active or self.executor is None:
            return
        executor, self.executor = self.executor, None
        get_logger().info("forecast_pool_released", idle_seconds=self.idle_seconds, worker=self.name)
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(executor.shutdown, wait=True))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def evaluate(self, batch: WorkBatch) -> list[SeriesForecast]:
        """Backtest, choose and forecast every series of the batch, off the event loop."""
        work = partial(
            evaluate_batch,
            [item.to_series() for item in batch.series],
            last_complete_quarter=batch.last_complete_quarter,
            horizon=batch.horizon,
            models=batch.models,
        )
        loop = asyncio.get_running_loop()
        self._cancel_release()
        self._active += 1
        executor = self._ensure_pool()
        try:
            results = await loop.run_in_executor(executor, work)
        except BrokenProcessPool as error:
            # A worker died (killed, out of memory): the pool is unusable; the next batch starts a fresh one.
            if executor is not None and self.executor is executor:
                self.executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            raise TransientError(f"forecast worker process died: {error}", code="worker_died") from error
        finally:
            self._active -= 1
            self._schedule_release()
        self.batches_done += 1
        return results
