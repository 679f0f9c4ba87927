"""The activation service: a FastStream app."""

from __future__ import annotations

from faststream import FastStream

from syno_activation.handlers import register
from syno_activation.settings import ActivationServiceSettings
from syno_shared.service import build_service


def create_app(settings: ActivationServiceSettings | None = None) -> FastStream:
    app, service = build_service("activation", settings or ActivationServiceSettings())
    register(service)
    return app
