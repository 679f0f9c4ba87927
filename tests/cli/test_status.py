"""`syno status` and `syno runs show` answer what ran, what failed and what waits, from the real servers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from syno_shared import db, migrate

pytestmark = pytest.mark.integration


def syno(nats_url: str, pg_dsn: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYNO_NATS_URL": nats_url, "SYNO_PG_DSN": pg_dsn, "SYNO_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "syno_cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_status_and_run_detail_show_each_stage_its_deliveries_and_errors(
    nats_url: str, isolated_pg_dsn: str, tmp_path: Path
) -> None:
    migrate.apply_migrations(isolated_pg_dsn, migrate.installed_sources(("ops",)))

    async def trail() -> None:
        pool = await db.create_pool(isolated_pg_dsn)
        try:
            landed = await db.stage_started(pool, run_id="run-1", snapshot_id="a" * 64, stage="ingestion", delivery=1)
            await db.stage_finished(pool, landed, status="succeeded", rows=10)
            first = await db.stage_started(pool, run_id="run-1", snapshot_id="a" * 64, stage="transform", delivery=1)
            await db.stage_finished(pool, first, status="retrying", error_code="transient", error_message="db away")
            await db.stage_started(pool, run_id="run-1", snapshot_id="a" * 64, stage="transform", delivery=2)
        finally:
            await pool.close()

    asyncio.run(trail())
    data_dir = tmp_path / "data"
    (data_dir / "quarantine").mkdir(parents=True)
    (data_dir / "quarantine" / "x.xlsx.reason.json").write_text(
        json.dumps({"file_name": "x.xlsx", "code": "corrupt_file", "message": "export it again"})
    )

    status = syno(nats_url, isolated_pg_dsn, data_dir, "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    [snapshot] = report["snapshots"]
    assert {stage: (run["status"], run["deliveries"]) for stage, run in snapshot["stages"].items()} == {
        "ingestion": ("succeeded", 1),
        "transform": ("running", 2),  # the latest run of the stage: a retry in progress
    }
    assert report["quarantined"] == [
        {"file_name": "x.xlsx", "code": "corrupt_file", "message": "export it again", "quarantined_at": None}
    ]
    assert report["dead_letters"] == [] and report["published"] is None

    detail = syno(nats_url, isolated_pg_dsn, data_dir, "runs", "show", "aaaaaaaa", "--json")
    rows = json.loads(detail.stdout)
    assert [(row["stage"], row["status"], row["delivery"], row["error_code"]) for row in rows] == [
        ("ingestion", "succeeded", 1, None),
        ("transform", "retrying", 1, "transient"),
        ("transform", "running", 2, None),
    ]


def test_status_names_the_setting_to_fix_when_unset(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNO_")}
    result = subprocess.run(
        [sys.executable, "-m", "syno_cli", "status"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 2 and "SYNO_PG_DSN and SYNO_NATS_URL not set" in result.stderr
