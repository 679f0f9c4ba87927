"""The one way series are forecast: batches of series, evaluated in a replica's long-lived process pool.

The service evaluates every batch it takes from the work queue through a ``BatchRunner``; the benchmarks
run the same batches through the same runner in-process, so what they time is what the service runs.
darts fits one series at a time and holds the GIL, so batches run in processes (threads would not help);
the pool lives as long as the replica, so the ~6 s darts/statsforecast import is paid once.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from functools import partial

from syno_forecast.backtest import SeriesForecast, evaluate
from syno_forecast.series import QuarterlySeries
from syno_forecast.workqueue import WorkBatch
from syno_shared.errors import TransientError


def evaluate_batch(
    series: Sequence[QuarterlySeries],
    *,
    last_complete_quarter: date,
    horizon: int = 1,
    models: Sequence[str] | None = None,
) -> list[SeriesForecast]:
    """Backtest, choose and forecast each series of a batch in turn (what one pool worker does)."""
    return [
        evaluate(item, horizon=horizon, models=models, last_complete_quarter=last_complete_quarter) for item in series
    ]


def make_executor(processes: int, start_method: str = "forkserver") -> ProcessPoolExecutor:
    """A process pool whose workers import the engine once, safe to start from a threaded service.

    ``forkserver`` preloads the engine in the server, so each worker forks with darts already imported.
    ``fork`` is the fastest to start from a single-threaded script.
    """
    context = multiprocessing.get_context(start_method)
    if isinstance(context, multiprocessing.context.ForkServerContext):
        context.set_forkserver_preload(["syno_forecast.backtest"])
    return ProcessPoolExecutor(max_workers=processes, mp_context=context)


def _warm() -> bool:
    """Run in each pool worker at start-up, so the first batch does not pay the process start."""
    return True


class BatchRunner:
    """One replica's engine: a long-lived process pool (or, with ``processes=0``, a thread) for batches."""

    def __init__(self, processes: int, *, name: str | None = None, start_method: str = "forkserver") -> None:
        self.processes = processes
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.start_method = start_method
        self.executor: ProcessPoolExecutor | None = None
        self.batches_done = 0

    @property
    def concurrency(self) -> int:
        """Batches this replica works on at once."""
        return max(1, self.processes)

    async def start(self) -> None:
        if self.processes > 0 and self.executor is None:
            self.executor = make_executor(self.processes, self.start_method)

    async def warm_up(self) -> None:
        """Start the worker processes now (darts is imported once, in the fork server)."""
        if self.executor is not None:
            loop = asyncio.get_running_loop()
            await asyncio.gather(*(loop.run_in_executor(self.executor, _warm) for _ in range(self.processes)))

    async def stop(self) -> None:
        if self.executor is not None:
            executor, self.executor = self.executor, None
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

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
        try:
            results = await loop.run_in_executor(self.executor, work)
        except BrokenProcessPool as error:
            # A worker died (killed, out of memory): the pool is unusable; start a fresh one and retry later.
            await self.stop()
            await self.start()
            raise TransientError(f"forecast worker process died: {error}", code="worker_died") from error
        self.batches_done += 1
        return results
