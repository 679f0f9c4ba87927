"""Fixtures for the transform tests: references for the cleaning tests (helpers in cleaning_support.py), and a
migrated database with a warm dbt for the integration tests (the harness is in transform_harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cleaning_support import REAL_MAPPING_DIR, SMALL_MAPPING
from transform_harness import DbtWarehouse

from syno_shared import migrate
from syno_transform.dbt_runner import WarmDbt
from syno_transform.main import REPO_DBT_DIR
from syno_transform.reference import Reference, load_reference


@pytest.fixture(scope="module")
def dbt_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dbt's target path, shared by a module's builds (a warm runner keeps its partial parse there)."""
    return tmp_path_factory.mktemp("dbt-target")


@pytest.fixture
def dbt_warehouse(isolated_pg_dsn: str, data_dir: Path, dbt_target: Path) -> DbtWarehouse:
    migrate.apply_migrations(isolated_pg_dsn, migrate.installed_sources(("ops", "transform")))
    return DbtWarehouse(
        dsn=isolated_pg_dsn,
        mapping_dir=data_dir / "mapping_table",
        dbt=WarmDbt(project_dir=REPO_DBT_DIR, target_path=dbt_target, pg_dsn=isolated_pg_dsn),
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The small reference of cleaning_support.SMALL_MAPPING, loaded from a mapping dir of its own."""
    mapping_dir = tmp_path_factory.mktemp("mapping_table")
    for name, text in SMALL_MAPPING.items():
        (mapping_dir / name).write_bytes(text.encode())
    return load_reference(mapping_dir)


@pytest.fixture(scope="module")
def real_reference() -> Reference:
    """The shipped mapping tables."""
    return load_reference(REAL_MAPPING_DIR)
