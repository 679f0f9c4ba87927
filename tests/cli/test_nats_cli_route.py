"""The README's NATS CLI route: the bytes and headers its `nats pub` line sends rerun a completed stage."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from stage_app import landed, stand_in_stage

from syno_shared import bus

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
async def stage_calls(nats_url: str, isolated_pg_dsn: str, tmp_path: Path) -> AsyncIterator[list[str]]:
    """A stage on the real protocol that records each time it does the work."""
    async with stand_in_stage(nats_url, isolated_pg_dsn, tmp_path) as stage:
        assert stage.snapshots is not None
        yield stage.snapshots


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
        body = landed(SNAPSHOT).model_dump_json().encode()
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
