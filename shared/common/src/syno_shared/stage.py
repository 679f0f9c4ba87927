"""How every stage handles one input: idempotency, the ops trail, retries and failure events.

One protocol for all four stages. A stage's input is a `StageInput` (an event from the bus, or for
ingestion a file on the share); `run_stage` makes the effect exactly-once (a completed snapshot is
not redone unless forced), records the run in ops.stage_runs (never left at 'running': every exit
closes the row), asks for a spaced retry of a transient failure up to max_deliver, and turns
everything else into one `pipeline.failed`. `run_stage_input` is the protocol; `run_stage` adapts
it to a JetStream message (a retry is a spaced nak).

Handlers stay thin: they parse the event (`parse_event`) and hand `run_stage` a coroutine
that does the work and returns the next event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import nats.js.errors
from faststream.exceptions import NackMessage, RejectMessage
from faststream.nats import NatsBroker, NatsMessage
from faststream.nats.publisher.usecase import LogicPublisher
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from syno_shared import bus, db, deadletter, faults, telemetry
from syno_shared.errors import SynoError
from syno_shared.events import Event, PipelineFailed, Stage, snapshot_or_unknown
from syno_shared.logging import get_logger, redact_text

tracer = trace.get_tracer("syno.stage")

EventT = TypeVar("EventT", bound=BaseModel)


@dataclass(frozen=True)
class StageOutcome:
    """What the work of a stage produced: the next event and how many rows it handled."""

    subject: str
    event: Event
    rows: int | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class StageContext:
    stage: Stage
    broker: NatsBroker
    pool: asyncpg.Pool
    stream_name: str
    max_deliver: int
    publishers: Mapping[str, LogicPublisher] = field(default_factory=dict)
    """The service's typed publishers by subject (bus.declare_publishers): events leave through them."""


@dataclass(frozen=True)
class StageInput:
    """One input to a stage: which run and snapshot, where it came from, which delivery this is."""

    run_id: str
    snapshot_id: str
    reference: str
    """The input as a person finds it again: `subject:stream-sequence` or a file name."""
    delivery: int = 1
    replay: Mapping[str, str] = field(default_factory=dict)
    """A replay's headers (force, attempt), forwarded downstream so the whole chain is redone once."""

    @property
    def is_forced(self) -> bool:
        return bus.FORCE_HEADER in self.replay

    @property
    def is_rehearsal(self) -> bool:
        return bus.REHEARSAL_HEADER in self.replay


@dataclass(frozen=True)
class StageFailed:
    """The work failed for good (rejected, or out of deliveries); pipeline.failed was published."""

    error: SynoError


@dataclass(frozen=True)
class RetryLater:
    """The work failed in a way a retry may fix: try the same input again after `delay` seconds."""

    delay: float
    error: SynoError


def message_reference(message: NatsMessage) -> str:
    """`subject:stream-sequence` of a JetStream message (unique per stored message, so per failure too)."""
    metadata = getattr(message.raw_message, "metadata", None)
    sequence = metadata.sequence.stream if metadata is not None else message.message_id
    return f"{message.raw_message.subject}:{sequence}"


def message_sequence(message: NatsMessage) -> int | None:
    metadata = getattr(message.raw_message, "metadata", None)
    return int(metadata.sequence.stream) if metadata is not None else None


def message_delivery(message: NatsMessage) -> int:
    metadata = getattr(message.raw_message, "metadata", None)
    return int(metadata.num_delivered) if metadata is not None else 1


def replay_headers(headers: Mapping[str, str], sequence: int | None) -> dict[str, str]:
    """The replay headers to carry downstream. A forced message without an attempt (a person's `nats pub`
    with only Syno-Force) gets one from its stream sequence, so every event it causes has a new id."""
    carried = (bus.FORCE_HEADER, bus.ATTEMPT_HEADER, bus.REHEARSAL_HEADER)
    replay = {key: value for key, value in headers.items() if key in carried}
    if bus.FORCE_HEADER in replay and bus.ATTEMPT_HEADER not in replay:
        replay[bus.ATTEMPT_HEADER] = f"force-{sequence}"
    return replay


def message_input(event: Event, message: NatsMessage) -> StageInput:
    return StageInput(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        reference=message_reference(message),
        delivery=message_delivery(message),
        replay=replay_headers(message.headers, message_sequence(message)),
    )


async def publish_failure(
    context: StageContext, *, stage_input: StageInput, error: SynoError, is_retryable: bool | None = None
) -> PipelineFailed:
    """One pipeline.failed per failed input: its message id names the input, so distinct failures never collide."""
    failure = PipelineFailed(
        run_id=stage_input.run_id,
        snapshot_id=snapshot_or_unknown(stage_input.snapshot_id),
        stage=context.stage,
        reason_code=error.code,
        message=redact_text(error.message),  # it goes to chat: no password an exception may quote
        is_retryable=error.retryable if is_retryable is None else is_retryable,
        input_reference=stage_input.reference,
    )
    attempt = f"{context.stage}:{stage_input.reference}"
    await bus.publish_event(
        context.broker,
        bus.PIPELINE_FAILED,
        failure,
        stream_name=context.stream_name,
        attempt=attempt,
        publishers=context.publishers,
    )
    return failure


async def parse_event(context: StageContext, model: type[EventT], message: NatsMessage) -> EventT | None:
    """The event in the message, or None after reporting a malformed body (never retried)."""
    try:
        return model.model_validate_json(message.body)
    except ValidationError as error:
        get_logger().error("event_rejected", subject=message.raw_message.subject, errors=error.errors()[:5])
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        problem = SynoError(
            f"malformed {model.__name__} event ({error.error_count()} errors), first at {where}: {first['msg']}",
            code="bad_event",
        )
        await dead_letter(context, message, problem)
        await publish_failure(
            context,
            stage_input=StageInput(run_id="unknown", snapshot_id="unknown", reference=message_reference(message)),
            error=problem,
        )
        return None


def event_decoder(context: Callable[[], StageContext], model: type[EventT]) -> Callable[..., Awaitable[EventT]]:
    """A subscriber's decoder: the body as `model`, so the handler takes the typed event (and the AsyncAPI document
    shows its schema); a malformed body is reported once by `parse_event` and the message rejected, never retried."""

    async def decode(message: NatsMessage, _original_decoder: Any) -> EventT:
        event = await parse_event(context(), model, message)
        if event is None:
            raise RejectMessage
        return event

    return decode


async def run_stage_input(
    context: StageContext, *, stage_input: StageInput, work: Callable[[], Awaitable[StageOutcome]]
) -> StageOutcome | RetryLater | StageFailed | None:
    """Do `work` once for the input: the outcome, a retry request, a final failure (reported), or None (skipped)."""
    log = get_logger().bind(stage=context.stage, run_id=stage_input.run_id, snapshot_id=stage_input.snapshot_id)
    started = time.perf_counter()

    def measured(outcome: str) -> None:
        """The stage's duration, recorded the same way by all four stages (syno_stage_duration_seconds)."""
        telemetry.STAGE_DURATION.record(time.perf_counter() - started, {"stage": context.stage, "outcome": outcome})

    if not stage_input.is_forced:
        done = await db.completed_output(context.pool, snapshot_id=stage_input.snapshot_id, stage=context.stage)
        if done is not None:
            # Completed before (redelivery or replay): publish the recorded result again under its
            # recorded message id, so JetStream drops it if the first publish went through.
            await publish_completion(context, done)
            # A worker that died after its commit left its run row open: the completion says it succeeded.
            await db.close_running(
                context.pool, snapshot_id=stage_input.snapshot_id, stage=context.stage, status="succeeded"
            )
            log.info("stage_skipped", reason="already completed for this snapshot")
            measured("skipped")
            return None

    stage_run_id = await db.stage_started(
        context.pool,
        run_id=stage_input.run_id,
        snapshot_id=stage_input.snapshot_id,
        stage=context.stage,
        delivery=stage_input.delivery,
    )
    with tracer.start_as_current_span(f"{context.stage}.run") as span:
        span.set_attribute("syno.run_id", stage_input.run_id)
        span.set_attribute("syno.snapshot_id", stage_input.snapshot_id)
        try:
            with bus.replay_context(stage_input.replay):
                faults.at(f"{context.stage}.work")
                outcome = await work()
        except BaseException as raised:
            # A SynoError says itself whether a retry can help; anything unknown is treated as
            # transient: retried with a spaced delay, then reported. Never swallowed, and the
            # stage_runs row is closed whatever was raised (a cancellation included).
            if not isinstance(raised, Exception):
                measured("interrupted")
                await _close_quietly(context, stage_run_id, "failed", "interrupted", type(raised).__name__)
                raise
            error = raised if isinstance(raised, SynoError) else unexpected_error(raised)
            is_final = not error.retryable or stage_input.delivery >= context.max_deliver
            await db.stage_finished(
                context.pool,
                stage_run_id,
                status="failed" if is_final else "retrying",
                error_code=error.code,
                error_message=error.message,
            )
            log.warning(
                "stage_failed",
                code=error.code,
                error=error.message,
                delivery=stage_input.delivery,
                is_final=is_final,
                exc_info=not isinstance(raised, SynoError),
            )
            measured("failed" if is_final else "retrying")
            if not is_final:
                return RetryLater(delay=bus.retry_delay(stage_input.delivery), error=error)
            await publish_failure(context, stage_input=stage_input, error=error)
            return StageFailed(error)

    await db.stage_finished(context.pool, stage_run_id, status="succeeded", rows=outcome.rows, details=outcome.details)
    measured("succeeded")
    recorded = await db.completed_output(context.pool, snapshot_id=stage_input.snapshot_id, stage=context.stage)
    if recorded is None:
        raise RuntimeError(f"{context.stage} finished without recording its completion (db.record_completion)")
    faults.at(f"{context.stage}.after_commit")
    await publish_completion(context, recorded)
    faults.at(f"{context.stage}.after_publish")
    log.info("stage_succeeded", seconds=round(time.perf_counter() - started, 3), rows=outcome.rows)
    return outcome


async def publish_completion(context: StageContext, completion: db.Completion) -> None:
    """Publish a recorded completion's event (the outbox row) and mark it published."""
    ack = await bus.publish_raw(
        context.broker,
        completion.event_json,
        completion.subject,
        headers={"Nats-Msg-Id": completion.message_id, **completion.headers},
        stream_name=context.stream_name,
        publishers=context.publishers,
    )
    if ack is not None and getattr(ack, "duplicate", False):
        get_logger().info("completion_already_published", message_id=completion.message_id)
    await db.mark_published(
        context.pool, snapshot_id=completion.snapshot_id, stage=completion.stage, message_id=completion.message_id
    )


async def reconcile_outbox(context: StageContext, *, older_than_seconds: float = 30.0) -> int:
    """Publish completions a dead process committed but never published; returns how many."""
    pending = await db.unpublished_completions(context.pool, stage=context.stage, older_than_seconds=older_than_seconds)
    for completion in pending:
        await publish_completion(context, completion)
        await db.close_running(
            context.pool, snapshot_id=completion.snapshot_id, stage=context.stage, status="succeeded"
        )
        get_logger().warning("outbox_published", snapshot_id=completion.snapshot_id, message_id=completion.message_id)
    return len(pending)


async def run_stage(
    context: StageContext, *, event_in: Event, message: NatsMessage, work: Callable[[], Awaitable[StageOutcome]]
) -> StageOutcome | None:
    """`run_stage_input` for an event from the bus.

    While the work runs the message is kept alive with in-progress acks, so the ack wait stays short and
    a dead worker's message comes back in seconds. Every retry is a spaced nak, also for a failure
    outside the work (the database down before the run row exists, the bus down on publish). After the
    last delivery, or when the input is rejected, the message is dead-lettered and one pipeline.failed
    is published.
    """
    stage_input = message_input(event_in, message)
    try:
        async with keep_alive(message):
            result = await run_stage_input(context, stage_input=stage_input, work=work)
    except Exception as raised:  # outside the work: its own failures came back as RetryLater or None
        error = raised if isinstance(raised, SynoError) else unexpected_error(raised)
        get_logger().warning(
            "stage_edge_failed", stage=context.stage, error=error.message, delivery=stage_input.delivery
        )
        if stage_input.delivery < context.max_deliver:
            raise NackMessage(delay=bus.retry_delay(stage_input.delivery)) from raised
        await dead_letter(context, message, error)
        await publish_failure(context, stage_input=stage_input, error=error)
        return None
    if isinstance(result, RetryLater):
        raise NackMessage(delay=result.delay) from result.error
    if isinstance(result, StageFailed):
        await dead_letter(context, message, result.error)
        return None
    return result


@contextlib.asynccontextmanager
async def keep_alive(message: NatsMessage, every: float = bus.IN_PROGRESS_SECONDS) -> AsyncIterator[None]:
    """Tell JetStream the message is being worked on, every `every` seconds, until the block ends."""

    async def ping() -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):  # a lost ping only shortens the lease; the work goes on
                await message.in_progress()

    pinger = asyncio.create_task(ping())
    try:
        yield
    finally:
        pinger.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pinger


async def dead_letter(context: StageContext, message: NatsMessage, error: SynoError) -> None:
    """Copy the message to the dead-letter stream with why; one dead letter per stored message."""
    subject = message.raw_message.subject
    sequence = message_sequence(message) or 0
    headers = deadletter.dead_letter_headers(
        original_headers=dict(message.headers),
        subject=subject,
        sequence=sequence,
        stage=context.stage,
        deliveries=message_delivery(message),
        error_code=error.code,
        error=redact_text(error.message),
        stream_name=context.stream_name,
    )
    await context.broker.publish(message.body, f"dlq.{subject}", headers=headers, stream=deadletter.DLQ_STREAM)
    get_logger().warning("dead_lettered", stage=context.stage, subject=subject, stream_sequence=sequence)


async def dead_letter_from_advisory(context: StageContext, advisory: bytes) -> None:
    """A message ran out of deliveries without an answer (its worker died each time): dead-letter and report it.

    The advisory names the stream sequence; the message is read back from the stream. The dead letter's
    and the failure's ids are the ones the stage itself would have used, so a message is reported once.
    """
    body = json.loads(advisory)
    stream_name, sequence = body["stream"], int(body["stream_seq"])
    js = context.broker.connection.jetstream()
    try:
        stored = await js.get_msg(stream_name, sequence)
    except nats.js.errors.NotFoundError:  # expired or deleted since: nothing left to keep
        get_logger().warning("dead_letter_gone", stream=stream_name, stream_sequence=sequence)
        return
    subject = stored.subject or "?"
    deliveries = int(body.get("deliveries", context.max_deliver))
    error = SynoError(
        f"no answer after {deliveries} deliveries: the {context.stage} worker stopped (crash, kill or out of memory)"
        " each time it took this message",
        code="max_deliveries",
    )
    headers = deadletter.dead_letter_headers(
        original_headers=dict(stored.headers or {}),
        subject=subject,
        sequence=sequence,
        stage=context.stage,
        deliveries=deliveries,
        error_code=error.code,
        error=error.message,
        stream_name=stream_name,
    )
    await context.broker.publish(stored.data or b"", f"dlq.{subject}", headers=headers, stream=deadletter.DLQ_STREAM)
    try:
        event = json.loads(stored.data or b"{}")
    except ValueError:
        event = {}
    event = event if isinstance(event, dict) else {}
    stage_input = StageInput(
        run_id=str(event.get("run_id", "unknown")),
        snapshot_id=snapshot_or_unknown(event.get("snapshot_id")),
        reference=f"{subject}:{sequence}",
        delivery=deliveries,
    )
    await publish_failure(context, stage_input=stage_input, error=error, is_retryable=True)
    get_logger().warning(
        "dead_lettered", stage=context.stage, subject=subject, stream_sequence=sequence, via="advisory"
    )


def unexpected_error(raised: Exception) -> SynoError:
    error = SynoError(f"{type(raised).__name__}: {raised}", code="unexpected_error")
    error.retryable = True
    return error


async def _close_quietly(context: StageContext, stage_run_id: int, status: str, code: str, message: str) -> None:
    try:
        await db.stage_finished(context.pool, stage_run_id, status=status, error_code=code, error_message=message)
    except Exception:  # the process is going down; the row is closed as abandoned at the next start
        get_logger().warning("stage_run_not_closed", stage_run_id=stage_run_id)
