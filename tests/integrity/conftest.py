"""Fixtures for the warehouse-integrity tests: a bus of each test's own and the transform service in this process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from integrity_support import TransformApp

from syno_shared import bus
from syno_shared.embedded import EmbeddedNats
from syno_transform.main import create_app
from syno_transform.settings import TransformOptions, TransformSettings


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    """A NATS server of the test's own (no other test's consumer or message reaches it), with the streams."""
    folder = tmp_path / "nats"
    folder.mkdir()
    server = EmbeddedNats(folder)
    server.start()
    try:
        asyncio.run(bus.ensure_streams(server.url, "SYNO"))
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def transform_app(nats_url: str, isolated_pg_dsn: str, data_dir: Path) -> TransformApp:
    """`async with transform_app(**options) as settings:` runs one transform replica (the real app: migrations,
    warm dbt, the workbook.landed consumer) in this process until the block ends."""

    @contextlib.asynccontextmanager
    async def running(**options: Any) -> AsyncIterator[TransformSettings]:
        settings = TransformSettings(
            data_dir=data_dir,
            nats_url=nats_url,
            pg_dsn=isolated_pg_dsn,
            max_deliver=2,
            log_format="console",
            transform=TransformOptions(**options),
        )
        app = create_app(settings)
        async with app:
            yield settings

    return running
