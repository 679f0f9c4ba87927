"""Fan-out of one forecast run over the replicas: batches of series out, per-series forecasts back.

The replica that receives marts.ready splits the run's series into batches (``make_batches``) and publishes
them on the work queue; every replica takes batches from the queue and evaluates them in its ``BatchRunner``
(a long-lived process pool, so the event loop keeps pulling while darts fits). A batch is self-contained:
series, target and models travel with it, so any replica can take any batch.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from functools import partial

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from syno_forecast.backtest import SeriesForecast
from syno_forecast.engine import evaluate_batch, make_executor
from syno_forecast.series import QuarterlySeries
from syno_shared.errors import TransientError

WORK_SCHEMA_VERSION = 1
RESULTS = TypeAdapter(list[SeriesForecast])


class SeriesPayload(BaseModel):
    """One quarterly series as it travels in a work batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    series_id: str = Field(description="Series identity, `<cohort>|<key>|<metric>`.")
    start: date | None = Field(description="First complete quarter (None: only a partial quarter).")
    values: list[float] = Field(description="Complete quarters, oldest first, gaps as zeros.")
    actual_to_date: float | None = Field(description="Value so far in the partial current quarter.")
    filled_quarters: int = Field(ge=0, description="Quarters filled with an explicit zero.")

    @classmethod
    def of(cls, series: QuarterlySeries) -> SeriesPayload:
        return cls(
            series_id=series.series_id,
            start=series.start,
            values=list(series.values),
            actual_to_date=series.actual_to_date,
            filled_quarters=series.filled_quarters,
        )

    def to_series(self) -> QuarterlySeries:
        return QuarterlySeries(
            self.series_id, self.start, tuple(self.values), self.actual_to_date, self.filled_quarters
        )


class WorkBatch(BaseModel):
    """A share of one forecast run's series, for whichever replica takes it from the work queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(default=WORK_SCHEMA_VERSION, description="Version of this message's schema.")
    forecast_run_id: str = Field(description="The forecast run the batch belongs to.")
    run_id: str = Field(description="Pipeline run of the snapshot.")
    snapshot_id: str = Field(description="Snapshot the series come from.")
    batch_no: int = Field(ge=0, description="Position of the batch in the run (0-based).")
    batch_count: int = Field(ge=1, description="Batches in the run.")
    last_complete_quarter: date = Field(description="Latest complete quarter of the snapshot.")
    horizon: int = Field(default=1, ge=1, description="Quarters forecast.")
    models: list[str] | None = Field(default=None, description="Candidate models (None: the engine's set).")
    series: list[SeriesPayload] = Field(description="The series to backtest and forecast.")


def split_series(series: Sequence[QuarterlySeries], batch_series: int) -> list[list[QuarterlySeries]]:
    """At most ``batch_series`` series per batch; interleaved so long and short series spread evenly."""
    count = math.ceil(len(series) / batch_series)
    return [list(series[start::count]) for start in range(count)]


def make_batches(
    series: Sequence[QuarterlySeries],
    *,
    forecast_run_id: str,
    run_id: str,
    snapshot_id: str,
    last_complete_quarter: date,
    batch_series: int,
    models: Sequence[str] | None = None,
    horizon: int = 1,
) -> list[WorkBatch]:
    parts = split_series(series, batch_series)
    return [
        WorkBatch(
            forecast_run_id=forecast_run_id,
            run_id=run_id,
            snapshot_id=snapshot_id,
            batch_no=number,
            batch_count=len(parts),
            last_complete_quarter=last_complete_quarter,
            horizon=horizon,
            models=list(models) if models is not None else None,
            series=[SeriesPayload.of(item) for item in part],
        )
        for number, part in enumerate(parts)
    ]


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
