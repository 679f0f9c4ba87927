"""The README's NATS CLI route: the bytes and headers its `nats pub` line sends rerun a completed stage."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from faststream.nats import NatsMessage

from syno_shared import bus, db
from syno_shared.embedded import EmbeddedNats
from syno_shared.events import MartsReady, QualityFacts, SnapshotDelta, WorkbookFacts, WorkbookLanded
from syno_shared.service import build_service
from syno_shared.settings import Settings
from syno_shared.stage import StageOutcome, parse_event, run_stage

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
SNAPSHOT = "e" * 64


def documented_pub() -> tuple[str, dict[str, str]]:
    """The subject and headers of the README's `nats pub` line."""
    line = next(line for line in README.read_text().splitlines() if line.startswith("nats pub "))
    words = shlex.split(line.split("<")[0])
    headers = dict(words[i + 1].split(":", 1) for i, word in enumerate(words) if word == "-H")
    assert "--force-stdin" in words
    return words[2], headers


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    server = EmbeddedNats(tmp_path)
    server.start()
    yield server.url
    server.stop()


def landed() -> WorkbookLanded:
    return WorkbookLanded(
        run_id="run-1",
        snapshot_id=SNAPSHOT,
        file_name="w.xlsx",
        path="processed/w.xlsx",
        size_bytes=1,
        delta=SnapshotDelta(is_first=True),
        sheets=[],
        contract_version="1.0",
        mapping_versions={},
    )


@pytest.fixture
async def stage_calls(nats_url: str, isolated_pg_dsn: str, tmp_path: Path) -> AsyncIterator[list[str]]:
    """A stage on the real protocol that records each time it does the work."""
    calls: list[str] = []
    app, service = build_service("transform", Settings(nats_url=nats_url, pg_dsn=isolated_pg_dsn, data_dir=tmp_path))

    @service.subscriber(bus.WORKBOOK_LANDED)
    async def on_landed(message: NatsMessage) -> None:
        event = await parse_event(service.context, WorkbookLanded, message)
        if event is None:
            return

        async def work() -> StageOutcome:
            calls.append(event.snapshot_id)
            ready = MartsReady(
                run_id=event.run_id,
                snapshot_id=event.snapshot_id,
                dbt_invocation_id="i",
                models_built=[],
                mart_rows={},
                workbook=WorkbookFacts(file_name="w.xlsx", size_bytes=1, sheet_rows={}, delta=event.delta),
                quality=QualityFacts(rows_loaded=0, tests_passed=0, tests_warned=0, tests_failed=0),
                data_freshness=None,
                latest_complete_quarter=None,
            )
            async with service.pool.acquire() as connection:
                await db.record_completion(
                    connection,
                    snapshot_id=event.snapshot_id,
                    stage="transform",
                    run_id=event.run_id,
                    subject=bus.MARTS_READY,
                    event_json=ready.model_dump_json(),
                )
            return StageOutcome(subject=bus.MARTS_READY, event=ready)

        await run_stage(service.context, event_in=event, message=message, work=work)

    async with app:
        yield calls


async def marts_ready(nats_url: str) -> list[dict[str, str]]:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        info = await js.stream_info("SYNO")
        headers = []
        for sequence in range(1, info.state.last_seq + 1):
            message = await js.get_msg("SYNO", sequence)
            if message.subject == bus.MARTS_READY:
                headers.append(dict(message.headers or {}))
        return headers
    finally:
        await connection.close()


async def wait_until(condition: object, seconds: float = 30) -> None:
    for _ in range(int(seconds * 10)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not in time")


async def test_the_documented_nats_pub_reruns_a_completed_stage(nats_url: str, stage_calls: list[str]) -> None:
    connection = await nats.connect(nats_url)
    try:
        body = landed().model_dump_json().encode()
        await connection.jetstream().publish(bus.WORKBOOK_LANDED, body, headers={"Nats-Msg-Id": "first"})
        await wait_until(lambda: len(stage_calls) == 1)

        subject, headers = documented_pub()
        assert (subject, headers) == (bus.WORKBOOK_LANDED, {bus.FORCE_HEADER: "1"})
        await connection.publish(subject, body, headers=headers)  # what `nats pub` sends: a core publish
        await connection.flush()
        await wait_until(lambda: len(stage_calls) == 2)
    finally:
        await connection.close()

    async def two_ready() -> bool:
        return len(await marts_ready(nats_url)) == 2

    for _ in range(100):
        if await two_ready():
            break
        await asyncio.sleep(0.1)
    first, rerun = await marts_ready(nats_url)
    assert first["Nats-Msg-Id"] == f"marts.ready:{SNAPSHOT}"
    # stream: 1 the first workbook.landed, 2 its marts.ready, 3 the republished workbook.landed
    assert rerun[bus.ATTEMPT_HEADER] == "force-3" and rerun["Nats-Msg-Id"] == f"marts.ready:{SNAPSHOT}:force-3"
    assert rerun[bus.FORCE_HEADER] == "1"  # forwarded: every stage downstream reruns too
    assert stage_calls == [SNAPSHOT, SNAPSHOT]
