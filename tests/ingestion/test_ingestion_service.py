"""The ingestion service as a process: bad files are quarantined, duplicates recorded, the share keeps working."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from nats.aio.msg import Msg

from syno_cli.pipeline import ensure_stream
from syno_sample.workbook import SampleSpec, write_workbook
from syno_shared import bus
from syno_shared.embedded import Endpoints
from syno_shared.fingerprint import file_sha256

pytestmark = pytest.mark.integration


async def run_scenario(
    endpoints: Endpoints, data_dir: Path, files: list[tuple[str, Path]]
) -> list[dict[str, Any] | None]:
    """Drop each file in turn and collect the event ingestion publishes for it (None: it published nothing)."""
    connection = await nats.connect(endpoints.nats_url)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_message(message: Msg) -> None:
        await received.put({"subject": message.subject, **json.loads(message.data)})

    await connection.subscribe(bus.WORKBOOK_LANDED, cb=on_message)
    await connection.subscribe(bus.PIPELINE_FAILED, cb=on_message)
    events: list[dict[str, Any] | None] = []
    try:
        for name, source in files:
            dropped = data_dir / "raw" / name
            shutil.copyfile(source, dropped)
            try:
                events.append(await asyncio.wait_for(received.get(), 60 if name != files[-1][0] else 5))
            except TimeoutError:
                events.append(None)
            for _ in range(600):  # whatever the outcome, the file leaves the share
                if not dropped.exists():
                    break
                await asyncio.sleep(0.1)
    finally:
        await connection.close()
    return events


def test_quarantine_duplicates_and_recovery(endpoints: Endpoints, data_dir: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.xlsx"
    write_workbook(good, SampleSpec(years=(2024,), rows_per_year=300, seed=5), data_dir / "mapping_table")
    corrupt = tmp_path / "corrupt.xlsx"
    corrupt.write_bytes(b"PK\x03\x04 definitely not a finished zip")
    asyncio.run(ensure_stream(endpoints.nats_url, "SYNO"))
    env = {
        **os.environ,
        "SYNO_NATS_URL": endpoints.nats_url,
        "SYNO_PG_DSN": endpoints.pg_dsn,
        "SYNO_DATA_DIR": str(data_dir),
        "SYNO_INGESTION__POLL_SECONDS": "0.2",
    }
    log = (tmp_path / "ingestion.log").open("wb")
    service = subprocess.Popen([sys.executable, "-m", "syno_ingestion"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        events = asyncio.run(
            run_scenario(
                endpoints,
                data_dir,
                [
                    ("Q4 ventes 'brouillon'.xlsx", corrupt),
                    ("sell-out.xlsx", good),
                    ("sell-out copy.xlsx", good),
                ],
            )
        )
        assert service.poll() is None, "the service must keep serving after a bad file"
    finally:
        service.terminate()
        service.wait(20)
        log.close()

    failed, landed, duplicate = events
    assert (failed["subject"], failed["stage"], failed["reason_code"]) == (
        bus.PIPELINE_FAILED,
        "ingestion",
        "corrupt_file",
    )
    assert failed["is_retryable"] is False
    assert landed["subject"] == bus.WORKBOOK_LANDED and landed["snapshot_id"] == file_sha256(good)
    assert [s["name"] for s in landed["sheets"]] == ["2024", "2024-C2"]
    assert all((data_dir / s["parquet_path"]).exists() for s in landed["sheets"])
    assert duplicate is None, "a duplicate drop is information (recorded below), never a failure alert"

    quarantined = sorted(p.name for p in (data_dir / "quarantine").iterdir())
    assert len(quarantined) == 2 and quarantined[1].endswith(".reason.json")
    reason = json.loads((data_dir / "quarantine" / quarantined[1]).read_text())
    assert reason["code"] == "corrupt_file" and reason["file_name"] == "Q4 ventes 'brouillon'.xlsx"
    assert list((data_dir / "raw").iterdir()) == []  # nothing left behind, nothing lost

    async def outcomes() -> list[tuple[str, str]]:
        connection = await asyncpg.connect(endpoints.pg_dsn)
        try:
            rows = await connection.fetch(
                "select file_name, outcome from ops.ingestion_files where snapshot_id = any($1::text[])"
                " order by file_event_id",
                [file_sha256(good), file_sha256(corrupt)],
            )
        finally:
            await connection.close()
        return [(r["file_name"], r["outcome"]) for r in rows]

    async def open_stage_runs() -> list[tuple[str, str]]:
        connection = await asyncpg.connect(endpoints.pg_dsn)
        try:
            rows = await connection.fetch(
                "select status, coalesce(error_code, '') from ops.stage_runs where stage = 'ingestion'"
                " and snapshot_id = any($1::text[]) order by stage_run_id",
                [file_sha256(good), file_sha256(corrupt)],
            )
        finally:
            await connection.close()
        return [(r[0], r[1]) for r in rows]

    assert asyncio.run(open_stage_runs()) == [("failed", "corrupt_file"), ("succeeded", "")]
    assert asyncio.run(outcomes()) == [
        ("Q4 ventes 'brouillon'.xlsx", "quarantined"),
        ("sell-out.xlsx", "accepted"),
        ("sell-out copy.xlsx", "duplicate"),
    ]
