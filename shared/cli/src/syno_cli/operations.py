"""`syno pause ingestion` / `syno resume ingestion`, and what `syno status` shows of pauses, heartbeats,
schedules and open deadline alerts.

A pause is written to the NATS control bucket (syno_shared.control) as the operator, so every replica of the
service obeys it and it outlives restarts; the watcher leaves new files on the share until `syno resume`.
"""

from __future__ import annotations

import asyncio
import getpass
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import nats
import typer
from nats.js import JetStreamContext
from rich.console import Console
from rich.table import Table

from syno_shared import control
from syno_shared.settings import Settings

err = Console(stderr=True)
Component = Annotated[str, typer.Argument(help=f"What to pause: {', '.join(control.PAUSABLE)}.")]


def _set(component: str, *, is_paused: bool, reason: str) -> control.PauseState:
    if component not in control.PAUSABLE:
        err.print(f"[red]{component} cannot be paused[/]; pausable: {', '.join(control.PAUSABLE)}")
        raise typer.Exit(2)
    nats_url = Settings().nats_url
    if nats_url is None:
        err.print("[red]SYNO_NATS_URL is not set[/]: the pause is kept in a running deployment's NATS")
        raise typer.Exit(2)

    async def write() -> control.PauseState:
        connection = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=1)
        try:
            return await control.write_pause(
                connection.jetstream(), component, is_paused=is_paused, reason=reason, changed_by=getpass.getuser()
            )
        finally:
            await connection.close()

    return asyncio.run(write())


def pause(
    component: Component,
    reason: Annotated[str, typer.Option("--reason", help="Shown in the logs and in `syno status`.")] = "",
) -> None:
    """Pause a service for every replica: ingestion takes no new file (files stay on the share untouched)."""
    _set(component, is_paused=True, reason=reason)
    typer.echo(f"{component} paused for every replica; `syno resume {component}` picks the waiting files up")


def resume(component: Component) -> None:
    """Resume a paused service: files waiting on the share are taken once they are seen stable."""
    _set(component, is_paused=False, reason="")
    typer.echo(f"{component} resumed")


async def pause_states(js: JetStreamContext) -> dict[str, dict[str, Any]]:
    return {component: (await control.read_pause(js, component)).as_dict() for component in control.PAUSABLE}


def _plain(row: asyncpg.Record) -> dict[str, Any]:
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in dict(row).items()}


async def ops_rows(connection: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Heartbeats, schedules and open deadline alerts (empty where a table does not exist yet)."""
    queries = {
        "heartbeats": ("ops.heartbeats", "select component, instance, beat_at, details::text from ops.heartbeats"),
        "schedules": (
            "ops.schedules",
            "select schedule, service, cron, timezone, last_tick, last_status, last_detail, next_tick"
            " from ops.schedules order by schedule",
        ),
        "deadlines": (
            "ops.deadline_alerts",
            "select deadline, occurrence, stage, title, opened_at from ops.deadline_alerts"
            " where resolved_at is null order by opened_at",
        ),
    }
    found: dict[str, list[dict[str, Any]]] = {}
    for name, (table, query) in queries.items():
        exists = await connection.fetchval("select to_regclass($1)", table) is not None
        found[name] = [_plain(row) for row in await connection.fetch(query)] if exists else []
    return found


def print_operations(console: Console, report: dict[str, Any]) -> None:
    for component, state in report.get("paused", {}).items():
        if state["is_paused"]:
            why = f": {state['reason']}" if state["reason"] else ""
            console.print(f"[yellow]{component} PAUSED[/] since {state['changed_at']} by {state['changed_by']}{why}")
        else:
            console.print(f"{component}: running (not paused)")
    for beat in report.get("heartbeats", []):
        console.print(f"heartbeat {beat['component']}: {beat['beat_at']} ({beat['instance']})")
    if report.get("schedules"):
        table = Table("schedule", "cron", "last tick", "last status", "next tick", title="schedules")
        for item in report["schedules"]:
            table.add_row(
                item["schedule"],
                f"{item['cron']} ({item['timezone']})",
                item["last_tick"] or "-",
                item["last_status"] or "-",
                item["next_tick"] or "-",
            )
        console.print(table)
    deadlines = report.get("deadlines", [])
    console.print(f"open deadline alerts: {len(deadlines)}")
    for item in deadlines[:5]:
        console.print(f"  {item['title']} (since {item['opened_at']})")
