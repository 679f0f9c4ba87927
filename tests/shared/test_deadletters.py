"""Dead letters end to end on a real service app: poison and exhausted messages are kept, alerted once, redriven."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from stage_app import StandInStage, landed, stand_in_stage

from syno_shared import bus, deadletter

pytestmark = pytest.mark.integration

SNAPSHOT = "d" * 64


@pytest.fixture
async def service_app(nats_url: str, isolated_pg_dsn: str, tmp_path: Path) -> AsyncIterator[StandInStage]:
    async with stand_in_stage(nats_url, isolated_pg_dsn, tmp_path, max_deliver=2) as stage:
        stage.is_failing = True
        yield stage


async def stored(nats_url: str, stream: str, subject: str) -> list[tuple[dict[str, str], dict[str, Any]]]:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        info = await js.stream_info(stream)
        found = []
        for sequence in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                message = await js.get_msg(stream, sequence)
            except nats.js.errors.NotFoundError:
                continue
            if message.subject == subject:
                found.append((dict(message.headers or {}), parsed(message.data or b"")))
        return found
    finally:
        await connection.close()


def parsed(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data


async def wait_for(condition: Any, seconds: float = 60) -> None:
    for _ in range(int(seconds * 10)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def publish(nats_url: str, subject: str, data: bytes, headers: dict[str, str]) -> None:
    connection = await nats.connect(nats_url)
    try:
        await connection.jetstream().publish(subject, data, headers=headers)
    finally:
        await connection.close()


async def test_a_poison_message_is_dead_lettered_and_alerted_once(nats_url: str, service_app: StandInStage) -> None:
    await publish(nats_url, bus.WORKBOOK_LANDED, b"{not json", {"Nats-Msg-Id": "poison-1"})

    async def has_failure() -> bool:
        return bool(await stored(nats_url, "SYNO", bus.PIPELINE_FAILED))

    await wait_for(has_failure)
    await asyncio.sleep(1)  # nothing more arrives: no retry of a malformed body
    failures = await stored(nats_url, "SYNO", bus.PIPELINE_FAILED)
    assert [(body["reason_code"], body["input_reference"]) for _, body in failures] == [
        ("bad_event", "workbook.landed:1")
    ]
    letters = await stored(nats_url, deadletter.DLQ_STREAM, "dlq.workbook.landed")
    assert len(letters) == 1 and letters[0][0][deadletter.ERROR_CODE_HEADER] == "bad_event"
    assert letters[0][0][deadletter.SEQUENCE_HEADER] == "1"
    assert service_app.calls == 0


async def test_exhausted_retries_end_in_a_dead_letter_that_redrives_to_completion(
    nats_url: str, service_app: StandInStage
) -> None:
    await publish(
        nats_url, bus.WORKBOOK_LANDED, landed(SNAPSHOT).model_dump_json().encode(), {"Nats-Msg-Id": "landed-1"}
    )

    async def has_dead_letter() -> bool:
        return bool(await stored(nats_url, deadletter.DLQ_STREAM, "dlq.workbook.landed"))

    await wait_for(has_dead_letter)  # first delivery fails, a spaced retry (5 s) fails, max_deliver = 2
    assert service_app.calls == 2
    failures = await stored(nats_url, "SYNO", bus.PIPELINE_FAILED)
    assert [(body["reason_code"], body["is_retryable"]) for _, body in failures] == [("transient", True)]

    service_app.is_failing = False  # the warehouse is back: an operator redrives
    env = {**os.environ, "SYNO_NATS_URL": nats_url}
    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "syno_cli", "dlq", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    letters = json.loads(listed.stdout)
    assert [
        (letter["subject"], letter["stage"], letter["deliveries"], letter["snapshot_id"]) for letter in letters
    ] == [(bus.WORKBOOK_LANDED, "transform", 2, SNAPSHOT)]
    await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "syno_cli", "dlq", "redrive", str(letters[0]["id"])],
        env=env,
        timeout=60,
        check=True,
    )

    async def has_ready() -> bool:
        return bool(await stored(nats_url, "SYNO", bus.MARTS_READY))

    await wait_for(has_ready)
    ready_events = await stored(nats_url, "SYNO", bus.MARTS_READY)
    assert len(ready_events) == 1 and ready_events[0][1]["snapshot_id"] == SNAPSHOT
    assert ready_events[0][0][bus.ATTEMPT_HEADER].startswith("redrive-")
    assert await stored(nats_url, deadletter.DLQ_STREAM, "dlq.workbook.landed") == []
    assert service_app.calls == 3


def test_the_health_check_reads_a_fresh_report_of_both_servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from syno_shared import health

    monkeypatch.setenv("SYNO_HEALTH_DIR", str(tmp_path))
    assert health.is_healthy("transform") == (False, f"no health report at {tmp_path / 'syno-transform.health.json'}")
    report = {"service": "transform", "is_nats_ok": True, "is_postgres_ok": False, "at": 1000.0}
    health.health_file("transform").write_text(json.dumps(report))
    assert health.is_healthy("transform", now=1001.0) == (False, "reaches NATS: True, PostgreSQL: False")
    health.health_file("transform").write_text(json.dumps({**report, "is_postgres_ok": True}))
    assert health.is_healthy("transform", now=1001.0) == (True, "reaches NATS and PostgreSQL")
    assert health.is_healthy("transform", now=1000.0 + health.STALE_AFTER_SECONDS + 1)[0] is False


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"schema_version": 99}, "schema_version 99 is not the version this service reads"),
        (
            {
                "sheets": [
                    {
                        "name": "2024",
                        "kind": "hardware",
                        "year": 2024,
                        "rows": 1,
                        "columns": ["PI"],
                        "parquet_path": "../../etc/passwd",
                    }
                ]
            },
            "not a path inside the data folder",
        ),
        ({"surprise": 1}, "Extra inputs are not permitted"),
        ({"snapshot_id": "../../etc/passwd"}, "String should match pattern '^[0-9a-f]{64}$'"),
    ],
    ids=["unknown schema_version", "path outside the data folder", "unknown field", "snapshot id not a sha256"],
)
async def test_an_untrusted_event_is_dead_lettered_unread(
    nats_url: str, service_app: StandInStage, change: dict[str, object], why: str
) -> None:
    """Nothing in an event is trusted: a bad one never reaches the work, and the dead letter says why."""
    body = json.dumps({**json.loads(landed(SNAPSHOT).model_dump_json()), **change}).encode()
    await publish(nats_url, bus.WORKBOOK_LANDED, body, {"Nats-Msg-Id": "untrusted"})

    async def has_dead_letter() -> bool:
        return bool(await stored(nats_url, deadletter.DLQ_STREAM, "dlq.workbook.landed"))

    await wait_for(has_dead_letter)
    [(headers, _)] = await stored(nats_url, deadletter.DLQ_STREAM, "dlq.workbook.landed")
    assert headers[deadletter.ERROR_CODE_HEADER] == "bad_event" and why in headers[deadletter.ERROR_HEADER]
    assert service_app.calls == 0
    [(_, failure)] = await stored(nats_url, "SYNO", bus.PIPELINE_FAILED)
    assert failure["reason_code"] == "bad_event"
    assert failure["snapshot_id"] in (SNAPSHOT, "unknown")  # never the hostile string it was sent
