"""The forecast service: a FastStream app whose worker processes start with the first batch and stop when idle."""

from __future__ import annotations

from faststream import FastStream

from syno_forecast.handlers import register
from syno_forecast.runner import BatchRunner
from syno_forecast.settings import ForecastSettings
from syno_shared.service import build_service


def create_app(settings: ForecastSettings | None = None) -> FastStream:
    settings = settings or ForecastSettings()
    app, service = build_service("forecast", settings)
    runner = BatchRunner(settings.forecast.processes, idle_seconds=settings.forecast.pool_idle_seconds)
    register(service, runner)

    @app.after_shutdown
    async def stop_workers() -> None:
        await runner.stop()

    return app
