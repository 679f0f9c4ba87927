"""`syno pause ingestion` / `syno resume ingestion` with a real NATS key-value bucket and the real watcher: a file
dropped while paused stays on the share untouched, the watcher says so (log, heartbeat) and `syno status` shows
it; after the resume the file goes through ingestion."""

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

from syno_ingestion.main import create_app
from syno_ingestion.settings import IngestionOptions, IngestionSettings
from syno_sample.workbook import SampleSpec, write_workbook
from syno_shared import bus, health

pytestmark = pytest.mark.integration


def syno(nats_url: str, pg_dsn: str, *args: str) -> str:
    env = {**os.environ, "SYNO_NATS_URL": nats_url, "SYNO_PG_DSN": pg_dsn}
    done = subprocess.run(
        [sys.executable, "-m", "syno_cli", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def landed_events(nats_url: str) -> list[dict[str, Any]]:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        info = await js.stream_info("SYNO")
        found = []
        for sequence in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            message = await js.get_msg("SYNO", sequence)
            if message.subject == bus.WORKBOOK_LANDED:
                found.append(json.loads(message.data or b"{}"))
        return found
    finally:
        await connection.close()


async def heartbeat_details(pg_dsn: str) -> dict[str, Any]:
    connection = await asyncpg.connect(pg_dsn)
    try:
        details = await connection.fetchval("select details::text from ops.heartbeats")
        return dict(json.loads(details)) if details else {}
    finally:
        await connection.close()


async def until(condition: Any, seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


async def test_a_file_dropped_while_paused_stays_and_goes_through_after_resume(
    nats_url: str,
    isolated_pg_dsn: str,
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SYNO_HEALTH_DIR", str(tmp_path))  # where the service writes its health report
    workbook = tmp_path / "sell-out.xlsx"
    write_workbook(workbook, SampleSpec(years=(2024,), rows_per_year=300, seed=5), data_dir / "mapping_table")
    settings = IngestionSettings(
        nats_url=nats_url,
        pg_dsn=isolated_pg_dsn,
        data_dir=data_dir,
        log_format="json",
        ingestion=IngestionOptions(poll_seconds=0.2),
    )
    await asyncio.to_thread(syno, nats_url, isolated_pg_dsn, "pause", "ingestion", "--reason", "share maintenance")
    dropped = data_dir / "raw" / "sell-out.xlsx"
    async with create_app(settings):

        async def says_paused() -> bool:
            return (await heartbeat_details(isolated_pg_dsn)).get("is_paused") is True

        await until(says_paused)  # the heartbeat carries the pause (written every 5 s)

        async def health_says_paused() -> bool:
            return health.is_healthy("ingestion")[1].startswith("reaches NATS and PostgreSQL; paused")

        await until(health_says_paused, 30)  # and so does the health report (every 10 s)
        shutil.copyfile(workbook, dropped)
        before = dropped.stat()
        await asyncio.sleep(4.0)  # twenty polls: the file is seen stable many times over, and never taken
        after = dropped.stat()
        assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
        assert await landed_events(nats_url) == []
        status = json.loads(await asyncio.to_thread(syno, nats_url, isolated_pg_dsn, "status", "--json"))
        assert status["paused"]["ingestion"]["is_paused"] is True
        assert status["paused"]["ingestion"]["reason"] == "share maintenance"
        [beat] = status["heartbeats"]
        assert beat["component"] == "ingestion.watcher"
        assert json.loads(beat["details"])["files_waiting"] == 1
        shown = " ".join((await asyncio.to_thread(syno, nats_url, isolated_pg_dsn, "status")).split())  # unwrapped
        assert "ingestion PAUSED since " in shown and ": share maintenance" in shown

        await asyncio.to_thread(syno, nats_url, isolated_pg_dsn, "resume", "ingestion")

        async def taken() -> bool:
            return not dropped.exists() and len(await landed_events(nats_url)) == 1

        await until(taken)
    [event] = await landed_events(nats_url)
    assert event["file_name"] == "sell-out.xlsx"
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert [entry["event"] for entry in logged if entry["event"] in ("ingestion_paused", "ingestion_resumed")] == [
        "ingestion_paused",
        "ingestion_resumed",
    ]
