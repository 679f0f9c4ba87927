"""Versioned migrations: applied once, in order, by one command or by replicas starting together."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

from syno_shared import migrate
from syno_shared.logging import redact_url

pytestmark = pytest.mark.integration

OWNERS = ("ops", "ingestion", "transform", "forecast", "activation")


def migration_files() -> list[str]:
    """Every migration file shipped by the packages, read from the folders (not from the code under test)."""
    ids = []
    for source in migrate.installed_sources():
        ids += sorted(path.stem for path in Path(source.directory).glob("*.sql"))
    return ids


async def tables(dsn: str) -> set[str]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_schema in ('ops', 'raw', 'ref', 'forecast', 'activation')"
        )
    finally:
        await connection.close()
    return {row[0] for row in rows}


def test_every_owner_ships_migrations_and_ops_comes_first() -> None:
    sources = migrate.installed_sources()
    assert sources[0].owner == "ops"
    assert sorted(source.owner for source in sources) == sorted(OWNERS)
    assert all(list(Path(source.directory).glob("*.sql")) for source in sources)


def test_replicas_starting_together_apply_each_migration_once(isolated_pg_dsn: str) -> None:
    sources = migrate.installed_sources()
    with ThreadPoolExecutor(4) as pool:
        applied = list(pool.map(lambda _: migrate.apply_migrations(isolated_pg_dsn, sources), range(4)))
    flat = [migration for run in applied for migration in run]
    assert sorted(flat) == sorted(migration_files())  # each applied by exactly one of the four
    assert migrate.applied_migrations(isolated_pg_dsn) == [m for m in migration_files() if m in flat]
    assert {"ops.stage_runs", "ops.stage_completions", "ops.ingestion_manifest", "raw.sales_lines"} <= asyncio.run(
        tables(isolated_pg_dsn)
    )
    assert migrate.apply_migrations(isolated_pg_dsn, sources) == []  # nothing pending the second time


def test_migrate_command_applies_pending_migrations(isolated_pg_dsn: str) -> None:
    env = {**os.environ, "SYNO_PG_DSN": isolated_pg_dsn}
    first = subprocess.run(
        [sys.executable, "-m", "syno_cli", "migrate", "--owner", "ops", "--owner", "ingestion"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "for ops, ingestion" in first.stderr
    assert asyncio.run(tables(isolated_pg_dsn)) >= {"ops.stage_runs", "ops.ingestion_manifest"}
    assert "raw.sales_lines" not in asyncio.run(tables(isolated_pg_dsn))
    again = subprocess.run(
        [sys.executable, "-m", "syno_cli", "migrate"], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert "raw.sales_lines" in asyncio.run(tables(isolated_pg_dsn))
    assert "none pending" not in again.stderr


def test_printed_urls_never_carry_a_password() -> None:
    assert redact_url("postgresql://syno:s3cret@db:5432/syno") == "postgresql://syno:***@db:5432/syno"
    assert redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


def test_exception_texts_lose_their_passwords_before_they_go_to_chat() -> None:
    from syno_shared.logging import redact_text

    text = "could not connect to postgresql://syno:s3cr3t@db:5432/syno (password=hunter2, token: abc)"
    assert redact_text(text) == "could not connect to postgresql://syno:***@db:5432/syno (password=***, token: ***)"
