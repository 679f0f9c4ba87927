"""The `syno` command: sample, run, demo, services, replay, migrate, dlq.

`run`, `demo` and `services` start the four services as separate processes (as in
production), on embedded NATS and PostgreSQL unless SYNO_NATS_URL / SYNO_PG_DSN are set.
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
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import nats
import typer
from nats.aio.msg import Msg
from rich.console import Console
from rich.table import Table

from syno_cli import dlq, operations, publish, servers, status
from syno_cli import metabase as metabase_cli
from syno_cli import replay as replays
from syno_cli.replay import replay_event as replay_event  # re-exported: tests replay through it
from syno_shared import access, bus
from syno_shared.embedded import Endpoints, embedded_runtime
from syno_shared.fingerprint import file_sha256
from syno_shared.logging import redact_url
from syno_shared.settings import Settings

app = typer.Typer(
    help="syno: sell-out workbook -> forecasts and activation, over NATS JetStream.", no_args_is_help=True
)
err = Console(stderr=True)
app.add_typer(dlq.app, name="dlq")
app.add_typer(metabase_cli.app, name="metabase")
app.add_typer(status.runs_app, name="runs")
app.command("status")(status.status)
app.command()(publish.publish)
app.command()(operations.pause)
app.command()(operations.resume)
SERVICES = ("ingestion", "transform", "forecast", "activation")
STAGE_SUBJECTS = {
    bus.WORKBOOK_LANDED: "ingestion",
    bus.MARTS_READY: "transform",
    bus.FORECAST_PUBLISHED: "forecast",
    bus.ACTIVATION_COMPLETED: "activation",
}


def _service_env(settings: Settings, endpoints: Endpoints, service: str | None = None) -> dict[str, str]:
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
                        env=_service_env(settings, endpoints, name),
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(20)
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
    settings: Settings, path: Path, *, timeout: float, with_services: bool | None, on_event: Any = None
) -> dict[str, Any]:
    """Drop the workbook on the share and follow it through the four stages."""
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
            dropped = drop_on_share(path, settings.raw_dir)
            if pickup_seconds is not None and not await left_the_share(dropped, pickup_seconds):
                waiter.cancel()
                return "no_service", {}
            return await waiter

        status, events = asyncio.run(follow())
        stages = [] if status == "no_service" else asyncio.run(stage_report(endpoints.pg_dsn, snapshot_id))
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


def require_mapping_tables(settings: Settings) -> None:
    """One line naming the setting to fix, not a traceback from deep inside a service."""
    folder = settings.mapping_table_dir
    if not folder.is_dir() or not any(folder.glob("*.csv")):
        err.print(
            f"[red]no mapping tables in {folder}[/]: set SYNO_MAPPING_DIR (or SYNO_DATA_DIR) to the folder holding "
            "the business's CSVs (Mapped_Countries_with_Regions.csv, exchange_rates.csv, product_rules.csv, ...)"
        )
        raise typer.Exit(2)


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


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Workbook to write (.xlsx).")],
    years: Annotated[list[int] | None, typer.Option(help="Years, one sheet each (plus a -C2 sheet).")] = None,
    rows_per_year: Annotated[int, typer.Option(help="Sales lines per year.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Same seed, same workbook.")] = 7,
) -> None:
    """Write a realistic, messy sale-out workbook in the real format."""
    from syno_sample.workbook import SampleSpec, write_workbook

    settings = Settings()
    spec = SampleSpec(years=tuple(years or (2023, 2024)), rows_per_year=rows_per_year, seed=seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = write_workbook(out, spec, settings.mapping_table_dir)
    err.print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {report.truth.height} sales lines")


@app.command()
def run(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The workbook to process.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the last stage.")] = 1800,
    services: Annotated[
        bool | None, typer.Option(help="Start the four services (default: with embedded servers).")
    ] = None,
) -> None:
    """Put a workbook through all four stages and wait for the result."""
    settings = Settings()
    require_mapping_tables(settings)
    result = run_pipeline(settings, path, timeout=timeout, with_services=services)
    if result["status"] == "no_service":
        err.print(
            f"[red]no ingestion service took the file from {settings.raw_dir} within {PICKUP_SECONDS:.0f} s[/]: start "
            "the services (`just services`, or `docker compose up -d`), or unset SYNO_NATS_URL and SYNO_PG_DSN to run "
            "on embedded servers with the services started for you"
        )
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(result, default=str))
    else:
        print_summary(result)
    if result["status"] != "succeeded":
        failure = result["failure"] or {
            "stage": "unknown",
            "reason_code": result["status"],
            "message": "no final event",
        }
        err.print(f"[red]failed in {failure['stage']}[/]: {failure['reason_code']}: {failure['message']}")
        raise typer.Exit(1)


@app.command()
def demo(
    rows_per_year: Annotated[int, typer.Option(help="Sales lines per year in the sample.")] = 100_000,
) -> None:
    """Generate a sample workbook and run it through the pipeline on embedded servers."""
    from syno_sample.workbook import SampleSpec, write_workbook

    settings = Settings()
    require_mapping_tables(settings)
    out = settings.data_dir / "sample" / "syno-sample.xlsx"
    with err.status("generating a 2-year sample workbook..."):
        report = write_workbook(out, SampleSpec(rows_per_year=rows_per_year), settings.mapping_table_dir)
    err.print(f"sample: {out} ({report.truth.height} sales lines)")
    started = time.perf_counter()
    with err.status("starting embedded NATS, PostgreSQL and the four services...") as status:

        def progress(subject: str, body: dict[str, Any]) -> None:
            elapsed = time.perf_counter() - started
            if subject == "subscribed":
                status.update("waiting for ingestion to pick the file up from the share...")
            elif subject in STAGE_SUBJECTS:
                err.print(f"  {elapsed:6.1f}s  {STAGE_SUBJECTS[subject]:<10} done -> {subject}")
                following = {
                    "ingestion": "transform (clean, load, dbt)",
                    "transform": "forecast",
                    "forecast": "activation",
                    "activation": "finishing",
                }[STAGE_SUBJECTS[subject]]
                status.update(f"{following}...")
            elif subject == bus.PIPELINE_FAILED:
                err.print(f"  {elapsed:6.1f}s  [red]{body.get('stage')} failed[/]: {body.get('message')}")

        result = run_pipeline(settings, out, timeout=1800, with_services=None, on_event=progress)
    print_summary(result)
    if result["status"] != "succeeded":
        raise typer.Exit(1)


def print_summary(result: dict[str, Any]) -> None:
    console = Console()
    console.print(
        f"[bold]run {result['run_id']}[/] snapshot {result['snapshot_id'][:12]}: {result['status']} "
        f"in {result['seconds']} s"
    )
    table = Table("stage", "status", "seconds", "rows")
    for name, stage in result["stages"].items():
        table.add_row(name, stage["status"], str(stage["seconds"]), str(stage["rows"]))
    console.print(table)
    if result["sheets"]:
        console.print("rows per sheet: " + ", ".join(f"{k}: {v:,}" for k, v in result["sheets"].items()))
    if result["marts"]:
        console.print("marts built: " + ", ".join(f"{k} ({v:,} rows)" for k, v in result["marts"].items()))
    if result.get("publication"):
        console.print(f"publication: {result['publication']} (published, kept_aside_older or published_forced)")
    tiers = [t for t in result["forecast"]["tiers"] if t["tier"] in ("T1", "T2", "T3")]
    if tiers:
        quarter = result["forecast"]["target_quarter"]
        forecasts = Table("tier", "metric", "point", "80% interval", "model", title=f"SVR-RM forecast for {quarter}")
        for tier in tiers:
            interval = f"{tier['lower_80']:,.0f} - {tier['upper_80']:,.0f}" if tier.get("lower_80") is not None else ""
            forecasts.add_row(tier["tier"], tier["metric"], f"{tier['point']:,.0f}", interval, tier["model"])
        console.print(forecasts)


@app.command()
def services() -> None:
    """Run the four services against the configured servers (embedded if unset) until Ctrl-C."""
    settings = Settings()
    with runtime(settings, with_services=True) as endpoints:
        err.print(
            f"NATS {redact_url(endpoints.nats_url)}\nPostgres {redact_url(endpoints.pg_dsn)}\n"
            f"watching {settings.raw_dir.resolve()}"
        )
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


@app.command("replay")
def replay_command(
    subject: Annotated[str, typer.Argument(help="Subject to replay, e.g. workbook.landed.")],
    snapshot: Annotated[str | None, typer.Option("--snapshot", help="The snapshot's latest event.")] = None,
    seq: Annotated[int | None, typer.Option("--seq", help="The event at this stream sequence.")] = None,
    since: Annotated[
        datetime | None, typer.Option("--since", help="Every event of the subject stored since (UTC).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Stages redo completed work; an older snapshot publishes.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be sent; send nothing.")] = False,
) -> None:
    """Publish stored events again under new message ids (see `syno_cli.replay` for what each option does)."""
    if sum(choice is not None for choice in (snapshot, seq, since)) != 1:
        err.print("[red]choose the events with exactly one of --snapshot, --seq, --since[/]")
        raise typer.Exit(2)
    settings = Settings()
    if settings.nats_url is None:
        err.print("[red]SYNO_NATS_URL is not set[/]: replay talks to a running deployment")
        raise typer.Exit(2)
    since_utc = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    sent = asyncio.run(
        replays.replay(
            settings.nats_login_url() or settings.nats_url,  # as SYNO_NATS_USER (the operator) when set
            settings.stream_name,
            subject,
            snapshot_id=snapshot,
            sequence=seq,
            since=since_utc,
            is_forced=force,
            is_dry_run=dry_run,
        )
    )
    if not sent:
        err.print(f"[red]no {subject} event matches[/] in stream {settings.stream_name}")
        raise typer.Exit(1)
    verb = "would replay" if dry_run else "replayed"
    for event, headers in sent:
        typer.echo(
            f"{verb} {subject} seq {event.sequence} snapshot {(event.snapshot_id or '?')[:12]} as "
            f"{headers[bus.ATTEMPT_HEADER]}{' (forced)' if force else ''}",
            err=True,
        )


@app.command()
def migrate(
    owner: Annotated[
        list[str] | None, typer.Option(help="Only these owners' migrations (ops, ingestion, transform, ...).")
    ] = None,
) -> None:
    """Apply every pending schema migration (the ops trail and each installed service's) to SYNO_PG_DSN."""
    from syno_shared import migrate as migrations

    settings = Settings()
    if settings.pg_dsn is None:
        err.print("[red]SYNO_PG_DSN is not set[/]: migrate talks to a running database (services migrate at start-up)")
        raise typer.Exit(2)
    sources = migrations.installed_sources(owner)
    applied = migrations.apply_migrations(settings.pg_dsn, sources)
    owners = ", ".join(source.owner for source in sources)
    typer.echo(f"applied {len(applied)} migrations ({', '.join(applied) or 'none pending'}) for {owners}", err=True)


def main() -> None:
    try:
        app()
    except Exception as error:  # only the unreachable/refused servers are explained; anything else is a bug
        explanation = servers.explain(error)
        if explanation is None:
            raise
        err.print(f"[red]{explanation}[/]", highlight=False, soft_wrap=True)
        sys.exit(2)
