"""`syno replay` chooses stored events by snapshot, sequence or time; a dry run sends nothing; force is explicit."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import nats
import pytest

from syno_shared import bus

pytestmark = pytest.mark.integration


async def publish(nats_url: str, snapshot_id: str) -> None:
    connection = await nats.connect(nats_url)
    try:
        body = json.dumps({"run_id": "r", "snapshot_id": snapshot_id}).encode()
        await connection.jetstream().publish(
            bus.WORKBOOK_LANDED, body, headers={"Nats-Msg-Id": f"landed:{snapshot_id}", "traceparent": "00-ab-cd-01"}
        )
    finally:
        await connection.close()


async def stored(nats_url: str) -> list[tuple[int, dict[str, str], dict[str, str]]]:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        info = await js.stream_info("SYNO")
        messages = [await js.get_msg("SYNO", seq) for seq in range(1, info.state.last_seq + 1)]
        return [(m.seq, dict(m.headers or {}), json.loads(m.data or b"{}")) for m in messages]
    finally:
        await connection.close()


def syno(nats_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syno_cli", "replay", bus.WORKBOOK_LANDED, *args],
        env={**os.environ, "SYNO_NATS_URL": nats_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_dry_run_says_what_it_would_send_and_sends_nothing(nats_url: str) -> None:
    for snapshot in ("a" * 64, "b" * 64):
        asyncio.run(publish(nats_url, snapshot))
    result = syno(nats_url, "--since", "2000-01-01T00:00:00", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("would replay workbook.landed") == 2
    assert len(asyncio.run(stored(nats_url))) == 2


def test_replays_carry_a_new_attempt_the_trace_and_force_only_when_asked(nats_url: str) -> None:
    asyncio.run(publish(nats_url, "a" * 64))
    asyncio.run(publish(nats_url, "b" * 64))
    assert syno(nats_url, "--snapshot", "a" * 64).returncode == 0
    assert syno(nats_url, "--seq", "2", "--force").returncode == 0
    messages = asyncio.run(stored(nats_url))
    assert [(seq, body["snapshot_id"][0]) for seq, _, body in messages] == [(1, "a"), (2, "b"), (3, "a"), (4, "b")]
    unforced, forced = messages[2][1], messages[3][1]
    assert unforced[bus.ATTEMPT_HEADER].startswith("replay-") and bus.FORCE_HEADER not in unforced
    assert forced[bus.FORCE_HEADER] == "1" and forced["traceparent"] == "00-ab-cd-01"
    assert forced["Nats-Msg-Id"] == f"workbook.landed:{'b' * 64}:{forced[bus.ATTEMPT_HEADER]}"


def test_a_replay_needs_exactly_one_choice_and_says_when_nothing_matches(nats_url: str) -> None:
    assert syno(nats_url).returncode == 2
    missing = syno(nats_url, "--snapshot", "c" * 64)
    assert missing.returncode == 1 and "no workbook.landed event matches" in missing.stderr
