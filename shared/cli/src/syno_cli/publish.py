"""`syno publish [SNAPSHOT]`: list the builds kept for rollback, or point the stable mart names back at one.

The stable names BI tools read (marts.sellout_quarterly, ...) are views over one build of one snapshot. The
transform publishes each snapshot that passed its checks and is not older than the published one; an operator
publishes any kept build with this command (a rollback), under the transform's build lock, in one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from syno_shared import db
from syno_shared.errors import SynoError
from syno_shared.settings import Settings

err = Console(stderr=True)


async def _kept(pg_dsn: str) -> list[dict[str, Any]]:
    from syno_transform import publication  # the publication rules live with the transform (one home)

    pool = await db.create_pool(pg_dsn)
    try:
        async with pool.acquire() as connection:
            return [dataclasses.asdict(row) for row in await publication.kept_builds(connection)]
    finally:
        await pool.close()


async def _publish(pg_dsn: str, snapshot: str) -> dict[str, Any]:
    from syno_transform import publication

    pool = await db.create_pool(pg_dsn)
    try:
        build, previous = await publication.publish_kept_build(pool, snapshot)
    finally:
        await pool.close()
    return {
        "snapshot_id": build.snapshot_id,
        "build_id": build.build_id,
        "run_id": build.run_id,
        "previous_snapshot_id": previous.snapshot_id if previous else None,
        "previous_build_id": previous.build_id if previous else None,
    }


def publish(
    snapshot: Annotated[
        str | None, typer.Argument(help="Snapshot to publish (its sha256 or a unique start of it); none: list.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the builds kept for rollback, or publish a kept build: the stable mart names show it at once."""
    settings = Settings()
    if settings.pg_dsn is None:
        err.print("[red]SYNO_PG_DSN is not set[/]: publish talks to a running database")
        raise typer.Exit(2)
    if snapshot is None:
        kept = asyncio.run(_kept(settings.pg_dsn))
        if as_json:
            typer.echo(json.dumps(kept, default=str))
            return
        table = Table("published", "snapshot", "build", "latest invoice", "landed", "last published")
        for row in kept:
            table.add_row(
                "*" if row["is_published"] else "",
                row["snapshot_id"][:12],
                row["build_id"],
                str(row["data_freshness"]),
                f"{row['landed_at']:%Y-%m-%d %H:%M:%S}",
                f"{row['last_published_at']:%Y-%m-%d %H:%M:%S}" if row["last_published_at"] else "",
            )
        Console().print(table)
        return
    try:
        result = asyncio.run(_publish(settings.pg_dsn, snapshot))
    except SynoError as error:
        err.print(f"[red]{error.code}[/]: {error.message}")
        raise typer.Exit(1) from error
    if as_json:
        typer.echo(json.dumps(result))
        return
    previous = (result["previous_snapshot_id"] or "nothing")[:12]
    err.print(f"published snapshot {result['snapshot_id'][:12]} (build {result['build_id']}); it replaces {previous}")
