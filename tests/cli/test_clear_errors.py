"""A person gets one line saying what to fix, within seconds: no services listening, no mapping tables."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from syno_shared import access

pytestmark = pytest.mark.integration

MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"


def syno_run(env: dict[str, str], workbook: Path, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "syno_cli", "run", str(workbook)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    return result, time.monotonic() - started


def test_run_against_servers_with_no_services_says_so_within_seconds(
    nats_url: str, isolated_pg_dsn: str, tmp_path: Path
) -> None:
    workbook = tmp_path / "w.xlsx"
    workbook.write_bytes(b"PK not really a workbook")
    env = {
        **os.environ,
        "SYNO_NATS_URL": nats_url,
        "SYNO_PG_DSN": isolated_pg_dsn,
        "SYNO_DATA_DIR": str(tmp_path / "data"),
        "SYNO_MAPPING_DIR": str(MAPPING_DIR),
    }
    result, seconds = syno_run(env, workbook, tmp_path)
    assert result.returncode == 1
    assert "no ingestion service took the file" in result.stderr and "just services" in result.stderr
    assert seconds < 60  # not the 30 minutes of a silent wait


def test_a_missing_mapping_folder_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    workbook = tmp_path / "w.xlsx"
    workbook.write_bytes(b"x")
    env = {**os.environ, "SYNO_DATA_DIR": str(tmp_path / "nowhere"), "SYNO_MAPPING_DIR": str(tmp_path / "nowhere")}
    result, _ = syno_run(env, workbook, tmp_path)
    assert result.returncode == 2
    assert "SYNO_MAPPING_DIR" in result.stderr and "Traceback" not in result.stderr


def test_an_unreachable_server_or_a_refused_login_is_one_line_naming_the_setting(
    nats_url: str, isolated_pg_dsn: str, tmp_path: Path
) -> None:
    """Not a traceback, never the password: what failed and which setting to look at."""
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    wrong_password = access.with_credentials(isolated_pg_dsn, urlsplit(isolated_pg_dsn).username or "", "guessed-pw")
    cases = [
        (
            ["replay", "workbook.landed", "--seq", "1", "--dry-run"],
            {"SYNO_NATS_URL": f"nats://127.0.0.1:{port}"},
            "SYNO_NATS_URL",
        ),
        (["dlq", "list"], {"SYNO_NATS_URL": f"nats://127.0.0.1:{port}"}, "SYNO_NATS_URL"),
        (["status"], {"SYNO_NATS_URL": nats_url, "SYNO_PG_DSN": wrong_password}, "SYNO_PG_DSN"),
    ]
    for args, settings, named in cases:
        result = subprocess.run(
            [sys.executable, "-m", "syno_cli", *args],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("SYNO_")}, **settings},
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        assert result.returncode == 2, (args, result.stderr)
        assert named in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "guessed-pw" not in result.stderr
