"""The forecast service: a FastStream app with a long-lived process pool for its share of the work."""

from __future__ import annotations

from faststream import FastStream

from syno_forecast.handlers import register
from syno_forecast.runner import BatchRunner
from syno_forecast.settings import ForecastSettings
from syno_shared.service import build_service


def create_app(settings: ForecastSettings | None = None) -> FastStream:
    settings = settings or ForecastSettings()
    app, service = build_service("forecast", settings)
    runner = BatchRunner(settings.forecast.processes)
    register(service, runner)

    @app.on_startup
    async def start_workers() -> None:
        await runner.start()

    @app.after_startup
    async def warm_workers() -> None:
        await runner.warm_up()

    @app.after_shutdown
    async def stop_workers() -> None:
        await runner.stop()

    return app
