"""The transform's settings come from the same environment variables as before the move into the service."""

from __future__ import annotations

from pathlib import Path

import pytest

from syno_transform.settings import TransformSettings


def test_the_transform_group_reads_its_syno_transform_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNO_TRANSFORM__TOP_CUSTOMERS", "7")
    monkeypatch.setenv("SYNO_TRANSFORM__RAW_RETENTION_SNAPSHOTS", "3")
    monkeypatch.setenv("SYNO_TRANSFORM__DBT_PROJECT_DIR", "/srv/dbt")
    monkeypatch.setenv("SYNO_DATA_DIR", "/srv/data")

    settings = TransformSettings(_env_file=None)

    assert (settings.transform.top_customers, settings.transform.raw_retention_snapshots) == (7, 3)
    assert settings.transform.dbt_project_dir == Path("/srv/dbt")
    assert settings.data_dir == Path("/srv/data")


def test_every_dbt_invocation_gets_the_top_customers_cut_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNO_TRANSFORM__TOP_CUSTOMERS", "12")

    assert TransformSettings(_env_file=None).transform.dbt_variables() == {"top_customers": 12}


def test_a_cut_off_below_one_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNO_TRANSFORM__TOP_CUSTOMERS", "0")

    with pytest.raises(ValueError, match="top_customers"):
        TransformSettings(_env_file=None)
