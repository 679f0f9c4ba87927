"""Fixtures for the transform's integration tests (the harness itself is in transform_harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from transform_harness import DbtWarehouse

from syno_shared import migrate
from syno_transform.dbt_runner import WarmDbt
from syno_transform.main import REPO_DBT_DIR


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
