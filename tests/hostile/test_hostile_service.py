"""The ingestion service as a process, fed the files that abort a reader: it quarantines them and lives on."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from syno_cli.pipeline import drop_on_share, ensure_stream
from syno_shared import bus
from syno_shared.embedded import Endpoints
from syno_shared.fingerprint import file_sha256

from .corpus import far_cell, unique_good, zip_bomb

pytestmark = pytest.mark.e2e


async def drop_and_collect(nats_url: str, raw_dir: Path, files: list[Path]) -> list[dict[str, Any]]:
    """Drop each file in turn, as a person does, and collect the one event ingestion publishes for it."""
    connection = await nats.connect(nats_url)
    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def on_message(message: Msg) -> None:
        await received.put({"subject": message.subject, **json.loads(message.data)})

    await connection.subscribe(bus.WORKBOOK_LANDED, cb=on_message)
    await connection.subscribe(bus.PIPELINE_FAILED, cb=on_message)
    events = []
    try:
        for path in files:
            dropped = drop_on_share(path, raw_dir)
            events.append(await asyncio.wait_for(received.get(), 60))
            for _ in range(100):
                if not dropped.exists():
                    break
                await asyncio.sleep(0.1)
    finally:
        await connection.close()
    return events


def test_the_512_gib_file_an_aborting_reader_and_a_zip_bomb_are_quarantined_and_the_next_workbook_lands(
    endpoints: Endpoints, data_dir: Path, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    files = [
        far_cell(staging / "far cell 512 GiB.xlsx"),
        far_cell(staging / "far cell undeclared.xlsx", is_declared=False),
        zip_bomb(staging / "zip bomb.xlsx", 1100 * 1024 * 1024),
        unique_good(staging / "sell-out.xlsx", 424242),
    ]
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
        events = asyncio.run(drop_and_collect(endpoints.nats_url, data_dir / "raw", files))
        assert service.poll() is None, "the service must outlive every file"
    finally:
        service.terminate()
        service.wait(20)
        log.close()

    summary = [(event["subject"], event.get("reason_code"), event.get("is_retryable")) for event in events]
    assert summary == [
        (bus.PIPELINE_FAILED, "too_many_columns", False),
        (bus.PIPELINE_FAILED, "reader_out_of_memory", False),
        (bus.PIPELINE_FAILED, "inflates_too_much", False),
        (bus.WORKBOOK_LANDED, None, None),
    ]
    assert events[3]["snapshot_id"] == file_sha256(files[3])
    assert all((data_dir / sheet["parquet_path"]).exists() for sheet in events[3]["sheets"])
    reasons = {
        json.loads(path.read_text())["file_name"]: json.loads(path.read_text())["code"]
        for path in (data_dir / "quarantine").glob("*.reason.json")
    }
    assert reasons == {
        "far cell 512 GiB.xlsx": "too_many_columns",
        "far cell undeclared.xlsx": "reader_out_of_memory",
        "zip bomb.xlsx": "inflates_too_much",
    }
    assert len(list((data_dir / "quarantine").iterdir())) == 6  # each file beside its reason
    assert list((data_dir / "raw").iterdir()) == []
