"""A service's health, as a container runtime and Grafana see it, and a shutdown that always ends.

Every 10 s a service checks that it reaches NATS (the connection is up) and PostgreSQL (`select 1`
within 5 s), sets the `syno_service_healthy` gauge, and writes the result to a small file in the
temporary folder. The same round counts the dead letters waiting in the dead-letter stream
(`syno_dead_letters_waiting`, what Grafana's dead-letter alert reads). `python -m syno_shared.health
<service>` (the compose healthcheck) exits 0 only when that file is fresh and both are reachable. On
SIGTERM a watchdog thread gives the service its graceful timeout to drain and then ends the process,
whatever NATS and PostgreSQL are doing, so a container runtime never has to kill it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import nats.js.errors

from syno_shared import deadletter, telemetry

CHECK_EVERY_SECONDS = 10.0
STALE_AFTER_SECONDS = 3 * CHECK_EVERY_SECONDS
SHUTDOWN_GRACE_SECONDS = 40.0  # the broker's graceful timeout (30 s) and the pool's close, with a margin


# What the last check found, per service in this process (one in a service's own), read when metrics are collected.
_HEALTHY: dict[str, float] = {}
_DEAD_LETTERS: dict[str, float] = {}

telemetry.observable_gauge(
    "syno.health",
    "syno_service_healthy",
    lambda: [(value, {"service": service}) for service, value in _HEALTHY.items()],
    labels=("service",),
    description="1 when the service reaches both NATS and PostgreSQL, else 0",
)
telemetry.observable_gauge(
    "syno.health",
    "syno_dead_letters_waiting",
    lambda: [(value, {"service": service}) for service, value in _DEAD_LETTERS.items()],
    labels=("service",),
    description="Messages in the dead-letter stream (SYNO_DLQ), as the service last counted them: redrive or drop them",
)


def health_file(service: str) -> Path:
    """Where the service reports (SYNO_HEALTH_DIR, default the temporary folder: one service per container)."""
    return Path(os.environ.get("SYNO_HEALTH_DIR") or tempfile.gettempdir()) / f"syno-{service}.health.json"


async def check(service: Any) -> dict[str, Any]:
    """What this process can reach now (the Service type is not imported: no cycle with service.py)."""
    is_nats_ok = bool(service.broker.connection is not None and service.broker.connection.is_connected)
    try:
        await asyncio.wait_for(service.pool.fetchval("select 1"), 5)
        is_postgres_ok = True
    except Exception:  # any failure to answer within 5 s is "not reachable"
        is_postgres_ok = False
    return {
        **service.details,  # what the service adds (ingestion: is_paused, files_waiting)
        "service": service.name,
        "is_nats_ok": is_nats_ok,
        "is_postgres_ok": is_postgres_ok,
        "at": time.time(),
    }


async def dead_letters_waiting(service: Any) -> int | None:
    """How many messages the dead-letter stream holds, or None when NATS cannot say now."""
    if service.broker.connection is None:
        return None
    try:
        info = await asyncio.wait_for(service.broker.connection.jetstream().stream_info(deadletter.DLQ_STREAM), 5)
    except nats.js.errors.NotFoundError:
        return 0
    except Exception:  # NATS away or slow: the gauge keeps its last value, the health check says why
        return None
    return int(info.state.messages)


async def report_forever(service: Any) -> None:
    _HEALTHY[service.name] = 0.0
    while True:
        result = await check(service)
        _HEALTHY[service.name] = float(result["is_nats_ok"] and result["is_postgres_ok"])
        waiting = await dead_letters_waiting(service)
        if waiting is not None:
            _DEAD_LETTERS[service.name] = float(waiting)
        path = health_file(service.name)
        path.with_suffix(".tmp").write_text(json.dumps(result))
        path.with_suffix(".tmp").replace(path)
        await asyncio.sleep(CHECK_EVERY_SECONDS)


def start_shutdown_watchdog(seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
    """End the process `seconds` from now if the graceful shutdown has not ended it by then."""

    def expire() -> None:
        sys.stderr.write(f"graceful shutdown took more than {seconds:.0f} s: exiting now\n")
        sys.stderr.flush()
        os._exit(1)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


def is_healthy(service: str, now: float | None = None) -> tuple[bool, str]:
    path = health_file(service)
    try:
        result = json.loads(path.read_text())
    except (OSError, ValueError):
        return False, f"no health report at {path}"
    age = (now or time.time()) - float(result.get("at", 0))
    if age > STALE_AFTER_SECONDS:
        return False, f"health report is {age:.0f} s old"
    if not (result.get("is_nats_ok") and result.get("is_postgres_ok")):
        return False, f"reaches NATS: {result.get('is_nats_ok')}, PostgreSQL: {result.get('is_postgres_ok')}"
    paused = f"; paused, {result.get('files_waiting', 0)} file(s) waiting" if result.get("is_paused") else ""
    return True, f"reaches NATS and PostgreSQL{paused}"


def main() -> None:
    healthy, why = is_healthy(sys.argv[1])
    print(why)
    raise SystemExit(0 if healthy else 1)


if __name__ == "__main__":
    main()
