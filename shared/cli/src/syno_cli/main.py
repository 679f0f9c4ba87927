"""The `syno` command: the verbs people type (`syno --help` lists them).

`run`, `demo` and `services` start the four services as separate processes (as in production), on
embedded NATS and PostgreSQL unless SYNO_NATS_URL / SYNO_PG_DSN are set (`syno_cli.pipeline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from syno_cli import check as deployment_check
from syno_cli import dlq, operations, pipeline, publish, servers, smoke, status
from syno_cli import metabase as metabase_cli
from syno_cli import replay as replays
from syno_shared import bus
from syno_shared.logging import redact_url
from syno_shared.settings import Settings

app = typer.Typer(
    help="syno: sell-out workbook -> forecasts and activation, over NATS JetStream.", no_args_is_help=True
)
err = Console(stderr=True)
app.add_typer(dlq.app, name="dlq")
app.add_typer(metabase_cli.app, name="metabase")
app.command("check")(deployment_check.check)
app.add_typer(status.runs_app, name="runs")
app.command("status")(status.status)
app.command()(publish.publish)
app.command()(operations.pause)
app.command()(operations.resume)
app.command()(smoke.smoke)


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
    from_stage: Annotated[
        str | None,
        typer.Option(
            "--from-stage",
            help="Rerun from this stage (transform, forecast, activation): its stored input for this workbook is "
            "replayed, forced; earlier stages are not rerun.",
        ),
    ] = None,
) -> None:
    """Put a workbook through all four stages (or from one stage on) and wait for the result."""
    settings = Settings()
    if from_stage is not None and from_stage not in pipeline.STAGE_INPUTS:
        err.print(f"[red]--from-stage {from_stage}[/]: choose one of {', '.join(pipeline.STAGE_INPUTS)}")
        raise typer.Exit(2)
    if from_stage is not None and (settings.nats_url is None or settings.pg_dsn is None):
        err.print("[red]--from-stage reruns a workbook a deployment has seen[/]: set SYNO_NATS_URL and SYNO_PG_DSN")
        raise typer.Exit(2)
    pipeline.require_mapping_tables(settings)
    result = pipeline.run_pipeline(settings, path, timeout=timeout, with_services=services, from_stage=from_stage)
    if result["status"] == "no_event":
        err.print(
            f"[red]no stored {pipeline.STAGE_INPUTS[from_stage or 'transform']} event for {path.name}[/] "
            f"(snapshot {result['snapshot_id'][:12]}) in stream {settings.stream_name}: run it whole first "
            "(`syno run PATH`), or check SYNO_NATS_URL"
        )
        raise typer.Exit(1)
    if result["status"] == "no_service":
        err.print(
            f"[red]no ingestion service took the file from {settings.raw_dir} within "
            f"{pipeline.PICKUP_SECONDS:.0f} s[/]: start the services (`just services`, or `docker compose up -d`), "
            "or unset SYNO_NATS_URL and SYNO_PG_DSN to run on embedded servers with the services started for you"
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
    pipeline.require_mapping_tables(settings)
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
            elif subject in pipeline.STAGE_SUBJECTS:
                err.print(f"  {elapsed:6.1f}s  {pipeline.STAGE_SUBJECTS[subject]:<10} done -> {subject}")
                following = {
                    "ingestion": "transform (clean, load, dbt)",
                    "transform": "forecast",
                    "forecast": "activation",
                    "activation": "finishing",
                }[pipeline.STAGE_SUBJECTS[subject]]
                status.update(f"{following}...")
            elif subject == bus.PIPELINE_FAILED:
                err.print(f"  {elapsed:6.1f}s  [red]{body.get('stage')} failed[/]: {body.get('message')}")

        result = pipeline.run_pipeline(settings, out, timeout=1800, with_services=None, on_event=progress)
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
    with pipeline.runtime(settings, with_services=True) as endpoints:
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
