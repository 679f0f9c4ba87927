"""Ingestion's one loop: list the share, take each file that has stopped changing.

A file whose ingestion failed in a way a retry may fix stays on the share and is taken again
after the protocol's spaced delay; after the last attempt it is quarantined (never retried forever).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from syno_ingestion.ingest import files_counter, ingest_file
from syno_ingestion.settings import IngestionService
from syno_ingestion.share import StabilityTracker, list_share
from syno_shared.logging import get_logger


@dataclass(frozen=True)
class PendingRetry:
    attempt: int
    not_before: float


async def watch_share(service: IngestionService, heartbeat: list[float]) -> None:
    settings = service.settings.ingestion
    tracker = StabilityTracker(stable_polls=settings.stable_polls)
    retries: dict[Path, PendingRetry] = {}
    raw_dir = service.settings.raw_dir
    log = get_logger().bind(share=str(raw_dir))
    log.info("watching_share", poll_seconds=settings.poll_seconds, stable_polls=settings.stable_polls)
    while True:
        listing = await asyncio.to_thread(list_share, raw_dir)
        heartbeat[0] = time.time()
        for path in tracker.observe(listing):
            tracker.forget([path])  # seen again after `stable_polls` more polls if it stays on the share
            pending = retries.get(path)
            if pending is not None and time.monotonic() < pending.not_before:
                continue
            files_counter.add(1, {"outcome": "seen"})
            attempt = pending.attempt if pending is not None else 1
            outcome = await ingest_file(service, path, attempt=attempt)
            if outcome.status == "retry" and outcome.retry_after is not None:
                retries[path] = PendingRetry(attempt + 1, time.monotonic() + outcome.retry_after)
                log.warning("ingest_retry", file_name=path.name, attempt=attempt, retry_after=outcome.retry_after)
            else:
                retries.pop(path, None)
        for gone in set(retries) - set(listing):
            del retries[gone]
        await asyncio.sleep(settings.poll_seconds)
