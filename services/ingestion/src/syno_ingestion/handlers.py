"""Ingestion's one loop: list the share, take each file that has stopped changing."""

from __future__ import annotations

import asyncio
import time

from syno_ingestion.ingest import files_counter, ingest_file
from syno_ingestion.share import StabilityTracker, list_share
from syno_shared.logging import get_logger
from syno_shared.service import Service


async def watch_share(service: Service, heartbeat: list[float]) -> None:
    settings = service.settings.ingestion
    tracker = StabilityTracker(stable_polls=settings.stable_polls)
    raw_dir = service.settings.raw_dir
    log = get_logger().bind(share=str(raw_dir))
    log.info("watching_share", poll_seconds=settings.poll_seconds, stable_polls=settings.stable_polls)
    while True:
        listing = await asyncio.to_thread(list_share, raw_dir)
        heartbeat[0] = time.time()
        for path in tracker.observe(listing):
            files_counter.add(1, {"outcome": "seen"})
            try:
                await ingest_file(service, path)
            except Exception:
                # One bad file must not stop the share: log it, keep the file, try again next poll.
                log.exception("ingest_failed", file_name=path.name)
            tracker.forget([path])
        await asyncio.sleep(settings.poll_seconds)
