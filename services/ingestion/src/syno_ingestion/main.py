"""The ingestion service: a FastStream app whose work is polling the share."""

from __future__ import annotations

import asyncio
import contextlib
import time

from faststream import FastStream

from syno_ingestion.handlers import watch_share
from syno_ingestion.heartbeat import publish_heartbeat_forever
from syno_ingestion.settings import IngestionSettings
from syno_shared import telemetry
from syno_shared.service import build_service


def create_app(settings: IngestionSettings | None = None) -> FastStream:
    settings = settings or IngestionSettings()
    app, service = build_service("ingestion", settings)
    heartbeat = [time.time()]
    telemetry.observable_gauge(
        "syno.ingestion",
        "syno_ingestion_heartbeat_age_seconds",
        lambda: [(time.time() - heartbeat[0], {})],
        labels=(),
        unit="s",
        description="Seconds since the watcher last listed the share: a dead watcher shows as a growing age",
    )
    tasks: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_watcher() -> None:
        settings.raw_dir.mkdir(parents=True, exist_ok=True)
        tasks.append(asyncio.create_task(watch_share(service, heartbeat), name="watch-share"))
        tasks.append(asyncio.create_task(publish_heartbeat_forever(service, heartbeat), name="watcher-heartbeat"))

    @app.on_shutdown
    async def stop_watcher() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return app
