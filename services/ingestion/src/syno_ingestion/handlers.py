"""Ingestion's one loop: list the share, take each file that has stopped changing, wait for the next
change (filesystem events on a local disk, the polling interval on SMB/NFS: share.watch_for).

A file whose ingestion failed in a way a retry may fix stays on the share and is taken again
after the protocol's spaced delay; after the last attempt it is quarantined (never retried forever).
No file can end the loop: whatever escapes one file's ingestion (a database outage, a full disk,
even a panic) is logged and that file is tried again later, a bounded number of times. While a
file is being read the heartbeat keeps beating, so a long read is not mistaken for a dead watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from syno_ingestion.ingest import FileOutcome, files_counter, ingest_file
from syno_ingestion.pause import PauseSwitch
from syno_ingestion.settings import IngestionService
from syno_ingestion.share import FileState, ShareWatch, display_name, list_share, sweep_work, watch_for
from syno_shared import bus
from syno_shared.logging import get_logger


@dataclass(frozen=True)
class PendingRetry:
    attempt: int
    not_before: float


@contextlib.asynccontextmanager
async def beating(heartbeat: list[float], every: float, at_most: float) -> AsyncIterator[None]:
    """Keep the heartbeat fresh while the block runs, for `at_most` seconds: a file's ingestion is bounded
    (the reader has a time limit), so one that runs longer is stuck, and its heartbeat must age."""

    async def beat() -> None:
        until = time.monotonic() + at_most
        while time.monotonic() < until:
            heartbeat[0] = time.time()
            await asyncio.sleep(every)

    beater = asyncio.create_task(beat())
    try:
        yield
    finally:
        beater.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beater


async def ingest_guarded(service: IngestionService, path: Path, seen: FileState, attempt: int) -> FileOutcome | None:
    """`ingest_file`, but nothing it raises ends the watcher; None when it failed outside the stage protocol."""
    try:
        return await ingest_file(service, path, seen, attempt=attempt)
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # a panic (pyo3's PanicException is a BaseException) must not end the loop either
        get_logger().error("ingest_crashed", file_name=display_name(path.name), attempt=attempt, exc_info=True)
        return None


async def watch_share(service: IngestionService, heartbeat: list[float]) -> None:
    """Watch the share in the mode chosen for it (share.watch_for) until cancelled."""
    settings = service.settings.ingestion
    raw_dir = service.settings.raw_dir
    # One watcher per share: whatever work folders exist now were left by a process that died mid-file.
    swept = await asyncio.to_thread(sweep_work, service.settings.data_dir, 0.0)
    watch = watch_for(
        raw_dir,
        settings.watch_mode,
        poll_seconds=settings.poll_seconds,
        stable_polls=settings.stable_polls,
        quiet_seconds=settings.quiet_seconds,
    )
    get_logger().bind(share=str(raw_dir)).info(
        "watching_share",
        mode=watch.mode,
        poll_seconds=settings.poll_seconds,
        stable_polls=settings.stable_polls,
        quiet_seconds=settings.quiet_seconds,
        swept=len(swept),
    )
    try:
        await _watch(service, watch, heartbeat)
    finally:
        await watch.close()


async def _watch(service: IngestionService, watch: ShareWatch, heartbeat: list[float]) -> None:
    settings = service.settings.ingestion
    retries: dict[Path, PendingRetry] = {}
    given_up: dict[Path, FileState] = {}
    raw_dir = service.settings.raw_dir
    log = get_logger().bind(share=str(raw_dir))
    paused = PauseSwitch(service)  # `syno pause ingestion`: every replica obeys it
    while True:
        listing = await asyncio.to_thread(list_share, raw_dir)
        heartbeat[0] = time.time()
        for path in await paused.admit(listing, offer=watch.ready, forget=watch.forget):
            watch.forget([path])  # offered again later (polls or seconds) if it stays on the share unchanged
            pending = retries.get(path)
            if (pending is not None and time.monotonic() < pending.not_before) or given_up.get(path) == listing[path]:
                continue
            files_counter.add(1, {"outcome": "seen"})
            attempt = pending.attempt if pending is not None else 1
            async with beating(heartbeat, settings.poll_seconds, settings.reader_timeout_seconds + 120):
                outcome = await ingest_guarded(service, path, listing[path], attempt)
            if outcome is None and attempt >= service.settings.max_deliver:
                given_up[path] = listing[path]  # left on the share, untouched until it changes
                retries.pop(path, None)
                log.error("ingest_given_up", file_name=display_name(path.name), attempts=attempt)
            elif outcome is None or (outcome.status == "retry" and outcome.retry_after is not None):
                delay = bus.retry_delay(attempt) if outcome is None else outcome.retry_after or 0.0
                retries[path] = PendingRetry(attempt + 1, time.monotonic() + delay)
                log.warning("ingest_retry", file_name=display_name(path.name), attempt=attempt, retry_after=delay)
            else:
                retries.pop(path, None)
        for gone in set(retries) - set(listing):
            del retries[gone]
        for gone in set(given_up) - set(listing):
            del given_up[gone]
        await watch.wait()
