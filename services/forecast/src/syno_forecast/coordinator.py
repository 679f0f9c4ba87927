"""The coordinating replica's side of the fan-out: a run's batches out on the work queue, their forecasts back.

The coordinator only waits (asynchronously) while batches are out, so its own replica keeps taking batches
too: one replica alone does the whole run, more replicas finish it sooner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from faststream.nats import NatsBroker

from syno_forecast import warehouse
from syno_forecast.results import SeriesForecast
from syno_forecast.workqueue import BATCH_RESULTS, FORECAST_WORK_STREAM, WorkBatch
from syno_shared.errors import SynoError, TransientError
from syno_shared.logging import get_logger

POLL_SECONDS = 0.2
PROGRESS_LOG_SECONDS = 10.0


@dataclass(frozen=True)
class CollectedRun:
    """Every series' forecast of a run (sorted by series id), who worked on it and for how long in all."""

    forecasts: list[SeriesForecast]
    workers: list[str]
    batch_seconds: float


async def publish_batches(broker: NatsBroker, batches: Sequence[WorkBatch]) -> None:
    """Put a run's batches on the work queue; a batch published twice is dropped by its Nats-Msg-Id."""
    for batch in batches:
        await broker.publish(
            batch.model_dump_json(),
            batch.subject,
            headers={"Nats-Msg-Id": batch.message_id},
            stream=FORECAST_WORK_STREAM,
            correlation_id=batch.run_id,
        )


async def collect_results(
    pool: asyncpg.Pool, forecast_run_id: str, batch_count: int, *, wait_seconds: float
) -> CollectedRun:
    """Wait (without blocking the loop) until every batch of the run is in, then read their forecasts."""
    log = get_logger().bind(forecast_run_id=forecast_run_id)
    started = time.monotonic()
    last_log = started
    while True:
        progress = await warehouse.work_progress(pool, forecast_run_id)
        if progress.errors:
            raise SynoError(
                f"{len(progress.errors)} forecast batch(es) failed: " + "; ".join(progress.errors[:3]),
                code="forecast_batch_failed",
            )
        if progress.batches_done >= batch_count:
            break
        now = time.monotonic()
        if now - started > wait_seconds:
            raise TransientError(
                f"only {progress.batches_done} of {batch_count} forecast batches came back within {wait_seconds:.0f} s;"
                " is a forecast replica running?",
                code="forecast_work_timeout",
            )
        if now - last_log >= PROGRESS_LOG_SECONDS:
            log.info("forecast_batches_waiting", batches_done=progress.batches_done, batches=batch_count)
            last_log = now
        await asyncio.sleep(POLL_SECONDS)
    finished = await warehouse.fetch_work_results(pool, forecast_run_id)
    parts = await asyncio.to_thread(lambda: [BATCH_RESULTS.validate_json(payload) for payload in finished.payloads])
    forecasts = sorted((result for part in parts for result in part), key=lambda result: result.series_id)
    return CollectedRun(forecasts=forecasts, workers=finished.workers, batch_seconds=finished.seconds)
