"""The stage protocol every stage shares, against the real embedded NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import nats
import pytest

from syno_shared import bus, db, migrate
from syno_shared.errors import InputRejected, TransientError
from syno_shared.events import PipelineFailed
from syno_shared.stage import (
    RetryLater,
    StageContext,
    StageFailed,
    StageInput,
    StageOutcome,
    reconcile_outbox,
    replay_headers,
    run_stage_input,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def context(nats_url: str, isolated_pg_dsn: str) -> AsyncIterator[StageContext]:
    await asyncio.to_thread(migrate.apply_migrations, isolated_pg_dsn, migrate.installed_sources(("ops",)))
    stream_name = "SYNO"
    connection = await nats.connect(nats_url)
    await connection.jetstream().add_stream(bus.stream_config(stream_name))
    await connection.close()
    broker = bus.create_broker(nats_url)
    await broker.connect()
    pool = await db.create_pool(isolated_pg_dsn)
    yield StageContext(stage="transform", broker=broker, pool=pool, stream_name=stream_name, max_deliver=3)
    await pool.close()
    await broker.stop()


async def stored(nats_url: str, stream_name: str) -> list[tuple[str, dict[str, object]]]:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        info = await js.stream_info(stream_name)
        messages = [await js.get_msg(stream_name, seq) for seq in range(info.state.first_seq, info.state.last_seq + 1)]
        return [(message.subject, json.loads(message.data or b"{}")) for message in messages if message.data]
    finally:
        await connection.close()


async def runs(pool: asyncpg.Pool) -> list[tuple[str, int, str | None]]:
    rows = await pool.fetch("select status, delivery, error_code from ops.stage_runs order by stage_run_id")
    return [(row[0], row[1], row[2]) for row in rows]


def failing(error: Exception) -> object:
    async def work() -> StageOutcome:
        raise error

    return work


async def test_transient_failures_are_retried_spaced_then_reported_once(context: StageContext, nats_url: str) -> None:
    def attempt(delivery: int) -> StageInput:
        return StageInput(run_id="r1", snapshot_id="s1", reference="workbook.landed:7", delivery=delivery)

    results = [
        await run_stage_input(context, stage_input=attempt(n), work=failing(TransientError("db restarting")))  # type: ignore[arg-type]
        for n in (1, 2, 3)
    ]
    assert [type(result).__name__ for result in results] == ["RetryLater", "RetryLater", "StageFailed"]
    assert [result.delay for result in results if isinstance(result, RetryLater)] == list(bus.RETRY_DELAYS_SECONDS[:2])
    assert await runs(context.pool) == [
        ("retrying", 1, "transient"),
        ("retrying", 2, "transient"),
        ("failed", 3, "transient"),
    ]
    events = await stored(nats_url, context.stream_name)
    assert [subject for subject, _ in events] == [bus.PIPELINE_FAILED]
    failure = PipelineFailed.model_validate(events[0][1])
    assert (failure.stage, failure.reason_code, failure.input_reference) == (
        "transform",
        "transient",
        "workbook.landed:7",
    )


async def test_rejected_input_is_reported_at_once_and_each_failure_alerts(context: StageContext, nats_url: str) -> None:
    """Two inputs failing the same way are two alerts: failure ids name the input, so none is dropped as a repeat."""
    for reference in ("workbook.landed:8", "workbook.landed:9"):
        stage_input = StageInput(run_id="unknown", snapshot_id="unknown", reference=reference)
        result = await run_stage_input(context, stage_input=stage_input, work=failing(InputRejected("bad sheet")))  # type: ignore[arg-type]
        assert isinstance(result, StageFailed) and result.error.code == "input_rejected"
    events = await stored(nats_url, context.stream_name)
    assert [body["input_reference"] for _, body in events] == ["workbook.landed:8", "workbook.landed:9"]
    assert await runs(context.pool) == [("failed", 1, "input_rejected"), ("failed", 1, "input_rejected")]


async def test_a_cancelled_stage_closes_its_run_row(context: StageContext) -> None:
    with pytest.raises(asyncio.CancelledError):
        await run_stage_input(
            context,
            stage_input=StageInput(run_id="r2", snapshot_id="s2", reference="x"),
            work=failing(asyncio.CancelledError()),  # type: ignore[arg-type]
        )
    assert await runs(context.pool) == [("failed", 1, "interrupted")]


async def test_a_run_left_running_by_a_dead_worker_is_closed_as_abandoned(context: StageContext) -> None:
    await db.stage_started(context.pool, run_id="r3", snapshot_id="s3", stage="transform", delivery=1)  # then killed

    async def work() -> StageOutcome:
        raise InputRejected("bad")

    await run_stage_input(
        context, stage_input=StageInput(run_id="r3", snapshot_id="s3", reference="x", delivery=2), work=work
    )
    assert await runs(context.pool) == [("abandoned", 1, None), ("failed", 2, "input_rejected")]


def test_a_forced_message_without_an_attempt_gets_one_from_its_sequence() -> None:
    """`nats pub ... -H Syno-Force:1` alone must still rerun every stage downstream: new ids all the way."""
    assert replay_headers({bus.FORCE_HEADER: "1", "traceparent": "x"}, 42) == {
        bus.FORCE_HEADER: "1",
        bus.ATTEMPT_HEADER: "force-42",
    }
    assert replay_headers({bus.FORCE_HEADER: "1", bus.ATTEMPT_HEADER: "replay-1"}, 42)[bus.ATTEMPT_HEADER] == "replay-1"
    assert replay_headers({"traceparent": "x"}, 42) == {}


async def test_a_completion_committed_but_never_published_is_published_once_by_the_reconciler(
    context: StageContext, nats_url: str
) -> None:
    """The process died between its commit and its publish: the outbox row is published after restart, once."""
    event = PipelineFailed(
        run_id="r4",
        snapshot_id="4" * 64,
        stage="transform",
        reason_code="x",
        message="stand-in for the stage's event",
        is_retryable=False,
        input_reference="x",
    )
    with bus.replay_context({bus.FORCE_HEADER: "1", bus.ATTEMPT_HEADER: "replay-7"}):
        async with context.pool.acquire() as connection:
            await db.record_completion(
                connection,
                snapshot_id="4" * 64,
                stage="transform",
                run_id="r4",
                subject=bus.MARTS_READY,
                event_json=event.model_dump_json(),
            )
    assert await reconcile_outbox(context, older_than_seconds=0) == 1
    assert await reconcile_outbox(context, older_than_seconds=0) == 0  # published, marked: never again
    connection = await nats.connect(nats_url)
    try:
        stored = await connection.jetstream().get_last_msg(context.stream_name, bus.MARTS_READY)
    finally:
        await connection.close()
    assert (stored.headers or {})[
        "Nats-Msg-Id"
    ] == f"marts.ready:{'4' * 64}:replay-7"  # the replay's id, not the original's
    assert (stored.headers or {})[bus.ATTEMPT_HEADER] == "replay-7"
