"""Running the pipeline from the CLI: the servers (embedded or configured), the four services as processes,
a workbook dropped on the share (or a stage's stored input replayed) and followed to its last event.

`syno run`, `syno demo` and `syno services` use it, and so do the end-to-end, golden and fault suites.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import nats
import typer
from nats.aio.msg import Msg
from rich.console import Console

from syno_cli import replay as replays
from syno_shared import access, bus
from syno_shared.embedded import Endpoints, embedded_runtime
from syno_shared.fingerprint import file_sha256
from syno_shared.settings import Settings

err = Console(stderr=True)

SERVICES = ("ingestion", "transform", "forecast", "activation")
STAGE_INPUTS = {"transform": bus.WORKBOOK_LANDED, "forecast": bus.MARTS_READY, "activation": bus.FORECAST_PUBLISHED}
"""The event each stage after ingestion consumes: what `syno run --from-stage` replays."""
STAGE_SUBJECTS = {
    bus.WORKBOOK_LANDED: "ingestion",
    bus.MARTS_READY: "transform",
    bus.FORECAST_PUBLISHED: "forecast",
    bus.ACTIVATION_COMPLETED: "activation",
}


def service_env(settings: Settings, endpoints: Endpoints, service: str | None = None) -> dict[str, str]:
    """A service process's environment: the servers, the share, and (when the runtime created them) its own
    NATS user and PostgreSQL role, never the operator's or the owner's (syno_shared.access)."""
    env = dict(os.environ)
    env.update(
        SYNO_NATS_URL=endpoints.nats_url,
        SYNO_PG_DSN=endpoints.pg_dsn,
        SYNO_DATA_DIR=str(settings.data_dir.resolve()),
        SYNO_MAPPING_DIR=str(settings.mapping_table_dir.resolve()),
    )
    credentials = endpoints.credentials.get(service) if service is not None else None
    if credentials is not None and credentials.nats_user is not None and credentials.nats_password is not None:
        env.update(
            SYNO_NATS_URL=access.without_credentials(endpoints.nats_url),
            SYNO_NATS_USER=credentials.nats_user,
            SYNO_NATS_PASSWORD=credentials.nats_password.get_secret_value(),
        )
    if credentials is not None and credentials.pg_role is not None and credentials.pg_password is not None:
        env.update(
            SYNO_PG_DSN=access.with_credentials(
                endpoints.pg_dsn, credentials.pg_role, credentials.pg_password.get_secret_value()
            ),
            SYNO_MIGRATE_ON_START="false",  # its role cannot: the owner applies them first (service_processes)
        )
    return env


@contextlib.contextmanager
def service_processes(
    settings: Settings, endpoints: Endpoints, log_dir: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The four services as child processes; stopped (SIGTERM, then SIGKILL) on the way out.

    Each logs in with its own credentials when the runtime created them; the owner then applies every
    pending migration first, since no service role may.
    """
    from syno_shared import migrate

    log_dir.mkdir(parents=True, exist_ok=True)
    if any(credentials.pg_role is not None for credentials in endpoints.credentials.values()):
        migrate.apply_migrations(endpoints.pg_dsn, migrate.installed_sources())
    processes = []
    try:
        for name in SERVICES:
            with (log_dir / f"{name}.log").open("ab") as log:  # the child keeps its own descriptor
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", f"syno_{name}"],
                        env=service_env(settings, endpoints, name),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield processes
    finally:
        stop_processes(processes)


def stop_processes(processes: Sequence[subprocess.Popen[bytes]], grace_seconds: float = 20) -> None:
    """SIGTERM to each still running, then SIGKILL to any still there after `grace_seconds`; all reaped."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def runtime(settings: Settings, *, with_services: bool | None) -> Iterator[Endpoints]:
    with embedded_runtime(settings.nats_url, settings.pg_dsn) as endpoints:
        start = with_services if with_services is not None else (endpoints.is_nats_embedded or endpoints.is_pg_embedded)
        # As the operator: the embedded one (in the URL), or SYNO_NATS_USER on a configured server.
        user = None if endpoints.is_nats_embedded else settings.nats_user
        password = settings.nats_password.get_secret_value() if user and settings.nats_password else None
        asyncio.run(bus.ensure_streams(endpoints.nats_url, settings.stream_name, user=user, password=password))
        if start:
            with service_processes(settings, endpoints, settings.processed_dir / "logs"):
                yield endpoints
        else:
            yield endpoints


async def ensure_stream(nats_url: str, stream_name: str) -> None:
    """Create (or update) the streams before anyone publishes, so no event is lost at start-up."""
    await bus.ensure_streams(nats_url, stream_name)


def drop_on_share(path: Path, raw_dir: Path) -> Path:
    """Copy into the share the way a person's copy lands: a hidden partial name, then a rename."""
    raw_dir.mkdir(parents=True, exist_ok=True)
    partial = raw_dir / f".{path.name}.{uuid.uuid4().hex[:8]}.part"
    shutil.copyfile(path, partial)
    target = raw_dir / path.name
    partial.rename(target)
    return target


async def wait_for_run(
    nats_url: str, snapshot_id: str, wait_seconds: float, on_event: Any = None
) -> tuple[str, dict[str, dict[str, Any]]]:
    """Wait for activation.completed or pipeline.failed of this snapshot; returns (status, events)."""
    connection = await nats.connect(nats_url)
    events: dict[str, dict[str, Any]] = {}
    done = asyncio.Event()

    async def receive(message: Msg) -> None:
        body = json.loads(message.data)
        if body.get("snapshot_id") != snapshot_id:
            return
        events[message.subject] = body
        if on_event is not None:
            on_event(message.subject, body)
        if message.subject in (bus.ACTIVATION_COMPLETED, bus.PIPELINE_FAILED):
            done.set()

    try:
        for subject in bus.ALL_SUBJECTS:
            await connection.subscribe(subject, cb=receive)
        await connection.flush()
        if on_event is not None:
            on_event("subscribed", {})
        try:
            await asyncio.wait_for(done.wait(), wait_seconds)
        except TimeoutError:
            return "timeout", events
    finally:
        await connection.close()
    return ("failed" if bus.PIPELINE_FAILED in events else "succeeded"), events


async def stage_report(pg_dsn: str, snapshot_id: str) -> list[dict[str, Any]]:
    from syno_shared import db

    pool = await db.create_pool(pg_dsn)
    try:
        return await db.stage_timings(pool, snapshot_id)
    finally:
        await pool.close()


def run_pipeline(
    settings: Settings,
    path: Path,
    *,
    timeout: float,
    with_services: bool | None,
    on_event: Any = None,
    from_stage: str | None = None,
) -> dict[str, Any]:
    """Drop the workbook on the share and follow it through the four stages.

    With `from_stage` (transform, forecast or activation), the workbook is not dropped: the stage's stored
    input for this workbook's snapshot is replayed, forced, so that stage and every one after it redo their
    work (replacing their rows, never duplicating them); the stages before it are left as they are.
    """
    snapshot_id = file_sha256(path)
    with runtime(settings, with_services=with_services) as endpoints:
        started = time.perf_counter()
        # Services someone else runs answer within seconds; ours may still be starting.
        is_own = with_services if with_services is not None else endpoints.is_nats_embedded or endpoints.is_pg_embedded
        pickup_seconds = None if is_own else PICKUP_SECONDS

        async def follow() -> tuple[str, dict[str, dict[str, Any]]]:
            # On configured servers, as SYNO_NATS_USER; the embedded runtime's URL already logs in.
            bus_url = (
                endpoints.nats_url if endpoints.is_nats_embedded else settings.nats_login_url() or endpoints.nats_url
            )
            waiter = asyncio.create_task(wait_for_run(bus_url, snapshot_id, timeout, on_event))
            await asyncio.sleep(0.2)
            if from_stage is not None:
                subject = STAGE_INPUTS[from_stage]
                sent = await replays.replay(
                    bus_url, settings.stream_name, subject, snapshot_id=snapshot_id, is_forced=True
                )
                if not sent:
                    waiter.cancel()
                    return "no_event", {}
                return await waiter
            dropped = drop_on_share(path, settings.raw_dir)
            if pickup_seconds is not None and not await left_the_share(dropped, pickup_seconds):
                waiter.cancel()
                return "no_service", {}
            return await waiter

        status, events = asyncio.run(follow())
        stages = (
            [] if status in ("no_service", "no_event") else asyncio.run(stage_report(endpoints.pg_dsn, snapshot_id))
        )
    return summarise(snapshot_id, status, events, stages, time.perf_counter() - started)


PICKUP_SECONDS = 15.0


async def left_the_share(dropped: Path, seconds: float) -> bool:
    """Whether an ingestion service took the file off the share within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not dropped.exists():
            return True
        await asyncio.sleep(0.2)
    return not dropped.exists()


def summarise(
    snapshot_id: str, status: str, events: dict[str, dict[str, Any]], stages: list[dict[str, Any]], seconds: float
) -> dict[str, Any]:
    by_stage = {row["stage"]: row for row in stages}
    failed = events.get(bus.PIPELINE_FAILED)
    run_id = next((event["run_id"] for event in events.values() if event.get("run_id") not in (None, "unknown")), None)
    forecast = events.get(bus.FORECAST_PUBLISHED) or {}
    return {
        "run_id": run_id,
        "snapshot_id": snapshot_id,
        "status": status,
        "seconds": round(seconds, 2),
        "stages": {
            name: {
                "status": by_stage[name]["status"] if name in by_stage else "not_run",
                "seconds": round(by_stage[name]["seconds"], 3)
                if name in by_stage and by_stage[name]["seconds"]
                else None,
                "rows": by_stage[name]["rows"] if name in by_stage else None,
            }
            for name in SERVICES
        },
        "failure": None if failed is None else {k: failed[k] for k in ("stage", "reason_code", "message")},
        "sheets": {s["name"]: s["rows"] for s in events.get(bus.WORKBOOK_LANDED, {}).get("sheets", [])},
        "marts": events.get(bus.MARTS_READY, {}).get("mart_rows", {}),
        "publication": events.get(bus.MARTS_READY, {}).get("publication"),
        "forecast": {
            "target_quarter": forecast.get("target_quarter"),
            "tiers": forecast.get("tiers", []),
            "cohorts": forecast.get("cohorts", []),
        },
    }


def require_mapping_tables(settings: Settings) -> None:
    """One line naming the setting to fix, not a traceback from deep inside a service."""
    folder = settings.mapping_table_dir
    if not folder.is_dir() or not any(folder.glob("*.csv")):
        err.print(
            f"[red]no mapping tables in {folder}[/]: set SYNO_MAPPING_DIR (or SYNO_DATA_DIR) to the folder holding "
            "the business's CSVs (Mapped_Countries_with_Regions.csv, exchange_rates.csv, product_rules.csv, ...)"
        )
        raise typer.Exit(2)
