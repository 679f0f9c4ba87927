"""Shared fixtures: the real embedded NATS and PostgreSQL, started once per test session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

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
