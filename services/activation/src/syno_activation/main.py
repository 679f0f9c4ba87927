"""The activation service: a FastStream app."""

from __future__ import annotations

from faststream import FastStream

from syno_activation.handlers import register
from syno_shared.service import build_service
from syno_shared.settings import Settings


def create_app(settings: Settings | None = None) -> FastStream:
    app, service = build_service("activation", settings or Settings())
    register(service)
    return app
