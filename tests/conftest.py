"""Shared fixtures: the real embedded NATS and PostgreSQL, started once per test session."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from own_databases import new_database

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


@pytest.fixture
def isolated_pg_dsn(endpoints: Endpoints) -> str:
    """A database of its own on the embedded server, so tests that compare snapshots do not see each other's."""
    return new_database(endpoints.pg_dsn)


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
