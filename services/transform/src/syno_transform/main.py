"""The transform service: a FastStream app with a warm dbt runner."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from faststream import FastStream

from syno_shared import schedules
from syno_shared.service import build_service
from syno_transform.dbt_runner import WarmDbt
from syno_transform.handlers import register
from syno_transform.reforecast import reforecast_action, reforecast_schedule
from syno_transform.settings import TransformSettings

REPO_DBT_DIR = Path(__file__).resolve().parents[4] / "dbt"


def create_app(settings: TransformSettings | None = None) -> FastStream:
    settings = settings or TransformSettings()
    app, service = build_service("transform", settings)
    assert settings.pg_dsn is not None  # build_service refuses to start without it
    dbt = WarmDbt(
        project_dir=settings.transform.dbt_project_dir or REPO_DBT_DIR,
        target_path=settings.transform.dbt_target_path or (settings.processed_dir / "dbt").resolve(),
        pg_dsn=settings.pg_dsn,
    )
    register(service, dbt)
    reforecast = reforecast_schedule(settings.transform)  # checked here: a bad cron stops the start, not a tick
    tasks: list[asyncio.Task[None]] = []

    @app.after_startup
    async def warm_dbt() -> None:
        await asyncio.to_thread(dbt.warm_up, settings.transform.dbt_variables())

    @app.after_startup
    async def start_schedules() -> None:
        if reforecast is not None:
            cron = schedules.run_forever(service.pool, reforecast, reforecast_action(service))
            tasks.append(asyncio.create_task(cron, name="transform-reforecast-schedule"))

    @app.on_shutdown
    async def stop_schedules() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return app
