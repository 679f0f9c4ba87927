"""The watcher's heartbeat, where other processes read it.

Every few seconds the time the watcher last listed the share is written to `ops.heartbeats` (component
`ingestion.watcher`), with the pause facts beside it (syno_ingestion.pause). A row in the ops trail rather than
a NATS key-value entry: ingestion needs no new right on the bus, and activation, which pages a person when the
heartbeat goes stale (syno_activation.deadlines), reads it with a select grant on one more ops table.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

import asyncpg

from syno_ingestion.settings import IngestionService
from syno_shared.logging import get_logger

HEARTBEAT_COMPONENT: Final = "ingestion.watcher"
HEARTBEAT_EVERY_SECONDS: Final = 5.0
_DATABASE_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def write_heartbeat(pool: asyncpg.Pool, beat_at: float, details: Mapping[str, object]) -> None:
    await pool.execute(
        "insert into ops.heartbeats (component, instance, beat_at, details) values ($1, $2, $3, $4::jsonb)"
        " on conflict (component) do update set instance = excluded.instance, beat_at = excluded.beat_at,"
        " details = excluded.details where heartbeats.beat_at <= excluded.beat_at",
        HEARTBEAT_COMPONENT,
        instance_name(),
        datetime.fromtimestamp(beat_at, UTC),
        json.dumps(dict(details)),
    )


async def publish_heartbeat_forever(
    service: IngestionService, heartbeat: list[float], every: float = HEARTBEAT_EVERY_SECONDS
) -> None:
    """Write the watcher's last listing time every `every` seconds (not this task's clock: a watcher that is
    stuck keeps an old time, and its heartbeat goes stale). A database away is logged and tried again."""
    while True:
        details = {key: service.details[key] for key in ("is_paused", "files_waiting") if key in service.details}
        try:
            await write_heartbeat(service.pool, heartbeat[0], details)
        except _DATABASE_ERRORS as error:
            get_logger().warning("heartbeat_not_written", error=str(error))
        await asyncio.sleep(every)
