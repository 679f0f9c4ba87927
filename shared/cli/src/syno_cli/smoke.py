"""`syno smoke`: after a deployment, a small generated workbook through every stage of the deployed services.

The workbook is dropped on the share under a rehearsal name (`bus.REHEARSAL_FILE_PREFIX`), so ingestion lands
it with the rehearsal header, which every stage carries on: transform builds and checks it aside and never
publishes it (no row-count baseline: it is no successor of the published snapshot), forecast forecasts it,
activation writes its storylines and sends nothing (no summary, no Metabase refresh, no lineage). People's
dashboards keep showing the published snapshot, which the command checks did not change. Exit 0 only when
every stage answered.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import typer
from rich.console import Console

from syno_cli import pipeline
from syno_shared import bus
from syno_shared.settings import Settings

err = Console(stderr=True)


async def published_snapshot(pg_dsn: str) -> str | None:
    connection = await asyncpg.connect(pg_dsn, timeout=10)
    try:
        value = await connection.fetchval(
            "select snapshot_id from ops.published_snapshot order by publication_id desc limit 1"
        )
    finally:
        await connection.close()
    return str(value) if value is not None else None


def verdict(result: dict[str, Any], published_before: str | None, published_after: str | None) -> list[str]:
    """What went wrong in a rehearsal's result, in words; empty when every stage answered as it should."""
    problems = []
    if result["status"] == "no_service":
        problems.append(f"no ingestion service took the file within {pipeline.PICKUP_SECONDS:.0f} s")
    elif result["status"] == "timeout":
        problems.append("no final event before the time limit")
    if result["failure"]:
        failure = result["failure"]
        problems.append(f"{failure['stage']} failed: {failure['reason_code']}: {failure['message']}")
    for stage, run in result["stages"].items():
        if run["status"] != "succeeded":
            problems.append(f"{stage} did not answer ({run['status']})")
    if result["status"] == "succeeded" and result["publication"] != "rehearsal":
        problems.append(f"transform reported publication {result['publication']!r}, not 'rehearsal'")
    if published_after != published_before:
        problems.append(f"the published snapshot changed ({published_before} -> {published_after})")
    return problems


def smoke(
    rows_per_year: Annotated[int, typer.Option(help="Sales lines per year in the generated workbook.")] = 2000,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the last stage.")] = 600,
) -> None:
    """Rehearse a run on the deployed services: a small generated workbook through every stage, never published,
    nothing sent. Exit 0 only when every stage answered."""
    from syno_sample.workbook import SampleSpec, write_workbook

    settings = Settings()
    if settings.nats_url is None or settings.pg_dsn is None:
        err.print("[red]SYNO_NATS_URL and SYNO_PG_DSN must be set[/]: smoke rehearses a run on a deployment")
        raise typer.Exit(2)
    pipeline.require_mapping_tables(settings)
    year = datetime.now(UTC).year
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    with tempfile.TemporaryDirectory(prefix="syno-smoke-") as folder:
        workbook = Path(folder) / f"{bus.REHEARSAL_FILE_PREFIX}{stamp}-{secrets.token_hex(4)}.xlsx"
        spec = SampleSpec(
            years=(year - 2, year - 1), rows_per_year=rows_per_year, seed=secrets.randbelow(2**31), unmapped_share=0
        )
        write_workbook(workbook, spec, settings.mapping_table_dir)
        before = asyncio.run(published_snapshot(settings.pg_dsn))
        result = pipeline.run_pipeline(settings, workbook, timeout=timeout, with_services=False)
        after = asyncio.run(published_snapshot(settings.pg_dsn))
    for stage, run in result["stages"].items():
        seconds = f"{run['seconds']:.1f} s" if run["seconds"] else ""
        err.print(f"  {stage:<10} {run['status']:<10} {seconds}", highlight=False)
    problems = verdict(result, before, after)
    if problems:
        for problem in problems:
            err.print(f"[red]smoke failed[/]: {problem}", highlight=False)
        raise typer.Exit(1)
    err.print(
        f"smoke passed: snapshot {result['snapshot_id'][:12]} through every stage in {result['seconds']:.0f} s, "
        f"built aside, published snapshot unchanged ({(before or 'none')[:12]}), nothing sent",
        highlight=False,
    )
