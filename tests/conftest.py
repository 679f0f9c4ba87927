"""Shared fixtures: the real embedded NATS and PostgreSQL, started once per test session."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from syno_shared.embedded import Endpoints, embedded_runtime

REPO = Path(__file__).resolve().parents[1]
MAPPING_DIR = REPO / "data" / "mapping_table"


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    with embedded_runtime(None, None) as running:
        yield running


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh SYNO_DATA_DIR holding the project's mapping tables."""
    root = tmp_path / "data"
    shutil.copytree(MAPPING_DIR, root / "mapping_table")
    for folder in ("raw", "processed", "quarantine"):
        (root / folder).mkdir(parents=True)
    return root


def database_dsn(dsn: str, database: str) -> str:
    """The same server, another database (the DSN's path names the database)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def isolated_pg_dsn(endpoints: Endpoints) -> str:
    """A database of its own on the embedded server, so tests that compare snapshots do not see each other's."""
    name = f"test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(endpoints.pg_dsn)
        try:
            await connection.execute(f"create database {name}")
        finally:
            await connection.close()

    asyncio.run(create())
    return database_dsn(endpoints.pg_dsn, name)


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A NATS server of the test's own (it starts in milliseconds), with the event, dead-letter and advisory
    streams: what the test reads back from them is only what it caused."""
    from syno_shared import bus
    from syno_shared.embedded import EmbeddedNats

    (tmp_path / "own-nats").mkdir()
    server = EmbeddedNats(tmp_path / "own-nats")
    server.start()
    asyncio.run(bus.ensure_streams(server.url, "SYNO"))
    yield server.url
    server.stop()
