"""The activation service: a FastStream app, and the outbox sweep beside its subscribers."""

from __future__ import annotations

import asyncio
import contextlib

from faststream import FastStream

from syno_activation.deliverer import deliver_periodically
from syno_activation.handlers import register
from syno_activation.settings import ActivationSettings
from syno_shared.service import build_service


def create_app(settings: ActivationSettings | None = None) -> FastStream:
    app, service = build_service("activation", settings or ActivationSettings())
    register(service)
    sweeps: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_outbox_sweep() -> None:
        """Rows left pending (a crash between queueing and sending, a retry due) are sent now and every minute."""
        activation = service.settings.activation
        sweep = deliver_periodically(service.pool, activation.channels, every=activation.outbox_sweep_seconds)
        sweeps.append(asyncio.create_task(sweep, name="activation-outbox-sweep"))

    @app.on_shutdown
    async def stop_outbox_sweep() -> None:
        for task in sweeps:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return app
