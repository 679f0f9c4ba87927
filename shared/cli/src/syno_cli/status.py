"""`syno status` and `syno runs show`: what ran, what failed, what is stuck, without SQL.

Read-only: the ops trail (stage runs, the published snapshot), the consumers' pending and redelivered
counts, the dead letters and the quarantine folder.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from syno_cli import operations, servers
from syno_shared import deadletter
from syno_shared.settings import Settings

err = Console(stderr=True)

RECENT_SNAPSHOTS = """
with recent as (
    select snapshot_id, max(started_at) as last_seen from ops.stage_runs
    group by snapshot_id order by last_seen desc limit $1
)
select distinct on (r.snapshot_id, r.stage) r.snapshot_id, r.run_id, r.stage, r.status, r.seconds, r.delivery,
       r.error_code, r.error_message, r.started_at, recent.last_seen
from ops.stage_runs r join recent using (snapshot_id)
order by r.snapshot_id, r.stage, r.started_at desc
"""
STAGES = ("ingestion", "transform", "forecast", "activation")


def _settings_or_exit() -> tuple[str, str, Settings]:
    settings = Settings()
    missing = [
        name for name, value in (("SYNO_PG_DSN", settings.pg_dsn), ("SYNO_NATS_URL", settings.nats_url)) if not value
    ]
    if missing:
        err.print(f"[red]{' and '.join(missing)} not set[/]: status reads a running deployment's servers")
        raise typer.Exit(2)
    return settings.pg_dsn or "", settings.nats_login_url() or "", settings


async def _published(connection: asyncpg.Connection) -> dict[str, Any] | None:
    if await connection.fetchval("select to_regclass('ops.published_snapshot')") is None:
        return None
    row = await connection.fetchrow("select * from ops.published_snapshot order by published_at desc limit 1")
    return None if row is None else {key: _plain(value) for key, value in dict(row).items()}


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _quarantined(data_dir: Path, limit: int = 20) -> list[dict[str, Any]]:
    reasons = sorted((data_dir / "quarantine").glob("*.reason.json"), reverse=True)[:limit]
    found = []
    for path in reasons:
        try:
            reason = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        found.append({key: reason.get(key) for key in ("file_name", "code", "message", "quarantined_at")})
    return found


async def gather(pg_dsn: str, nats_url: str, settings: Settings, snapshots: int = 10) -> dict[str, Any]:
    connection = await asyncpg.connect(pg_dsn, timeout=10)
    try:
        rows = await connection.fetch(RECENT_SNAPSHOTS, snapshots)
        published = await _published(connection)
        ops_rows = await operations.ops_rows(connection)  # heartbeats, schedules, open deadline alerts
    finally:
        await connection.close()
    runs: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: r["last_seen"], reverse=True):
        entry = runs.setdefault(row["snapshot_id"], {"snapshot_id": row["snapshot_id"], "stages": {}})
        entry["run_id"] = row["run_id"]
        entry["stages"][row["stage"]] = {
            "status": row["status"],
            "seconds": round(row["seconds"], 2) if row["seconds"] is not None else None,
            "deliveries": row["delivery"],
            "error": f"{row['error_code']}: {row['error_message']}" if row["error_code"] else None,
            "started_at": row["started_at"].isoformat(),
        }
    bus_connection = await servers.connect_nats(nats_url)
    try:
        js = bus_connection.jetstream()
        consumers = [
            {
                "consumer": info.name,
                "pending": info.num_pending,
                "waiting_for_ack": info.num_ack_pending,
                "redelivered": info.num_redelivered,
            }
            for info in await js.consumers_info(settings.stream_name)
        ]
        letters = [letter.as_dict() for letter in await deadletter.list_all(js)]
        paused = await operations.pause_states(js)
    finally:
        await bus_connection.close()
    return {
        "published": published,
        "snapshots": list(runs.values()),
        "consumers": sorted(consumers, key=lambda consumer: consumer["consumer"]),
        "dead_letters": letters,
        "quarantined": _quarantined(settings.data_dir),
        "paused": paused,
        **ops_rows,
    }


def status(as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False) -> None:
    """Recent snapshots stage by stage, the published snapshot, consumers, dead letters, quarantined files."""
    pg_dsn, nats_url, settings = _settings_or_exit()
    report = asyncio.run(gather(pg_dsn, nats_url, settings))
    if as_json:
        typer.echo(json.dumps(report, default=str))
        return
    console = Console()
    published = report["published"]
    console.print(f"published snapshot: {published['snapshot_id'][:12] if published else 'none recorded'}")
    operations.print_operations(console, report)
    runs = Table("snapshot", "run", *STAGES, title="recent snapshots")
    for entry in report["snapshots"]:
        cells = []
        for stage in STAGES:
            run = entry["stages"].get(stage)
            cells.append("-" if run is None else f"{run['status']} {run['seconds'] or ''}s x{run['deliveries']}")
        runs.add_row(entry["snapshot_id"][:12], entry["run_id"][:8], *cells)
    console.print(runs)
    consumers = Table("consumer", "pending", "waiting for ack", "redelivered", title="consumers")
    for consumer in report["consumers"]:
        consumers.add_row(*(str(consumer[key]) for key in ("consumer", "pending", "waiting_for_ack", "redelivered")))
    console.print(consumers)
    console.print(f"dead letters: {len(report['dead_letters'])} (syno dlq list)")
    console.print(f"quarantined files: {len(report['quarantined'])}")
    for item in report["quarantined"][:5]:
        console.print(f"  {item['file_name']}: {item['code']}: {item['message']}")


async def run_rows(pg_dsn: str, key: str) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(pg_dsn, timeout=10)
    try:
        rows = await connection.fetch(
            "select stage_run_id, run_id, snapshot_id, stage, status, delivery, started_at, finished_at, seconds,"
            " rows, error_code, error_message, trace_id from ops.stage_runs"
            " where run_id = $1 or snapshot_id = $1 or (length($1) >= 8 and snapshot_id like $1 || '%')"
            " order by stage_run_id",
            key,
        )
    finally:
        await connection.close()
    return [{name: _plain(value) for name, value in dict(row).items()} for row in rows]


def show(
    key: Annotated[str, typer.Argument(help="A run id, a snapshot id, or its first 8+ characters.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """One run in detail: every stage run (deliveries included) with its error and trace id."""
    pg_dsn, _, _ = _settings_or_exit()
    rows = asyncio.run(run_rows(pg_dsn, key))
    if not rows:
        err.print(f"[red]no run or snapshot {key}[/] in ops.stage_runs")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    table = Table("stage", "status", "delivery", "started", "seconds", "rows", "error", "trace id", title=key)
    for row in rows:
        table.add_row(
            row["stage"],
            row["status"],
            str(row["delivery"]),
            str(row["started_at"])[:19],
            f"{row['seconds']:.2f}" if row["seconds"] is not None else "",
            str(row["rows"] or ""),
            f"{row['error_code']}: {row['error_message']}" if row["error_code"] else "",
            row["trace_id"] or "",
        )
    Console().print(table)


runs_app = typer.Typer(help="Runs: one workbook's pass through the stages.", no_args_is_help=True)
runs_app.command("show")(show)
