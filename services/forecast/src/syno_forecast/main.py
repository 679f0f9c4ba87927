"""The forecast service: a FastStream app."""

from __future__ import annotations

from faststream import FastStream

from syno_forecast.handlers import register
from syno_forecast.warehouse import FORECAST_DDL
from syno_shared.service import build_service
from syno_shared.settings import Settings


def create_app(settings: Settings | None = None) -> FastStream:
    app, service = build_service("forecast", settings or Settings(), ddl=FORECAST_DDL)
    register(service)
    return app
