"""A replica's engine for work batches: a long-lived process pool, so the event loop keeps pulling while darts fits."""

from __future__ import annotations

import asyncio
import os
import socket
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

from syno_forecast.backtest import SeriesForecast
from syno_forecast.engine import evaluate_batch, make_executor
from syno_forecast.workqueue import WorkBatch
from syno_shared.errors import TransientError


def _ready() -> bool:
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
            await asyncio.gather(*(loop.run_in_executor(self.executor, _ready) for _ in range(self.processes)))

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
