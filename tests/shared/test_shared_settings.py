"""Settings come from SYNO_ variables (a service adds its own nested group) with safe defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from syno_ingestion.settings import IngestionSettings
from syno_shared.settings import Settings


def test_defaults_mean_embedded_servers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("SYNO_NATS_URL", "SYNO_PG_DSN", "SYNO_DATA_DIR", "SYNO_OTLP_ENDPOINT", "SYNO_MAPPING_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.nats_url is None and settings.pg_dsn is None and settings.otlp_endpoint is None
    assert settings.raw_dir == Path("data/raw")
    assert settings.mapping_table_dir == Path("data/mapping_table")


def test_environment_and_nested_groups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNO_NATS_URL", "nats://nas:4222")
    monkeypatch.setenv("SYNO_PG_DSN", "postgresql://syno@db/syno")
    monkeypatch.setenv("SYNO_DATA_DIR", "/volume1/sellout")
    monkeypatch.setenv("SYNO_OTLP_ENDPOINT", "http://lgtm:4318")
    monkeypatch.setenv("SYNO_INGESTION__STABLE_POLLS", "4")
    settings = IngestionSettings()
    assert settings.nats_url == "nats://nas:4222"
    assert settings.pg_dsn == "postgresql://syno@db/syno"
    assert settings.quarantine_dir == Path("/volume1/sellout/quarantine")
    assert settings.otlp_endpoint == "http://lgtm:4318"
    assert settings.ingestion.stable_polls == 4  # a service's own group, read from the same environment


def test_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNO_NATS_URL", raising=False)
    (tmp_path / ".env").write_text("SYNO_NATS_URL=nats://from-dotenv:4222\n")
    assert Settings().nats_url == "nats://from-dotenv:4222"


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNO_INGESTION__STABLE_POLLS", "0")
    with pytest.raises(ValueError, match="stable_polls"):
        IngestionSettings()
    monkeypatch.setenv("SYNO_MAX_DELIVER", "0")
    with pytest.raises(ValueError, match="max_deliver"):
        Settings()
