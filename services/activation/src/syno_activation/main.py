"""The activation service: a FastStream app, and the outbox sweep beside its subscribers."""

from __future__ import annotations

import asyncio
import contextlib

from faststream import FastStream

from syno_activation.deadline_watch import check_periodically, freshness_action, freshness_schedule
from syno_activation.deliverer import deliver_periodically
from syno_activation.handlers import register
from syno_activation.settings import ActivationSettings
from syno_shared import schedules
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
        deadlines = activation.deadlines  # deadlines that page a person, every minute and on the freshness cron
        if deadlines.check_seconds > 0:
            checks = check_periodically(service, every=deadlines.check_seconds)
            sweeps.append(asyncio.create_task(checks, name="activation-deadlines"))
        if (freshness := freshness_schedule(deadlines)) is not None:
            cron = schedules.run_forever(service.pool, freshness, freshness_action(service))
            sweeps.append(asyncio.create_task(cron, name="activation-freshness-schedule"))

    @app.on_shutdown
    async def stop_outbox_sweep() -> None:
        for task in sweeps:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return app
