"""Fixtures for the forecast stage tests: a database per test, cloned from one with dbt-built marts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from forecast_marts import build_marts_database, database_dsn, execute

from syno_shared.embedded import Endpoints


@pytest.fixture(scope="module")
def marts_template(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Built once per module: migrations, raw lines, `dbt build` (see forecast_marts.py)."""
    return build_marts_database(endpoints.pg_dsn, tmp_path_factory.mktemp("dbt-target"))


@pytest.fixture
def marts_dsn(endpoints: Endpoints, marts_template: str) -> str:
    """A database of this test's own, cloned from the template (marts, migrations and all)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(endpoints.pg_dsn, f"create database {name} template {marts_template}"))
    return database_dsn(endpoints.pg_dsn, name)
