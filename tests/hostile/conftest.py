"""One share watcher for the whole hostile corpus, on a database and a data folder of its own."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from syno_shared.embedded import Endpoints

from .share_watcher import Watcher

MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"


async def own_database(pg_dsn: str) -> str:
    name = f"hostile_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(pg_dsn)
    try:
        await connection.execute(f"create database {name}")
    finally:
        await connection.close()
    return urlunsplit(urlsplit(pg_dsn)._replace(path=f"/{name}"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def watcher(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Watcher]:
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(MAPPING_DIR, root / "data" / "mapping_table")
    for folder in ("data/raw", "data/processed", "data/quarantine", "outside", "staging"):
        (root / folder).mkdir(parents=True)
    (root / "outside" / "secret.txt").write_text("must never be read, moved or written")
    running = Watcher(root=root, nats_url=endpoints.nats_url, pg_dsn=await own_database(endpoints.pg_dsn))
    await running.start()
    yield running
    await running.stop()
