"""How every stage handles one event: idempotency, the ops trail, retries and failure events.

Handlers stay thin: they parse the event and hand `run_stage` a coroutine that does the work
and returns the next event. `run_stage` makes the effect exactly-once (a completed snapshot is
not redone unless forced), records the run in ops.stage_runs, retries transient failures with
spaced delays up to max_deliver, and turns everything else into `pipeline.failed`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
from faststream.exceptions import NackMessage
from faststream.nats import NatsBroker, NatsMessage
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from syno_shared import bus, db
from syno_shared.errors import SynoError
from syno_shared.events import Event, PipelineFailed, Stage
from syno_shared.logging import get_logger

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


def delivery_count(message: NatsMessage) -> int:
    metadata = getattr(message.raw_message, "metadata", None)
    return int(metadata.num_delivered) if metadata is not None else 1


def replay_headers(message: NatsMessage) -> dict[str, str]:
    """A replay's headers, forwarded downstream so the whole chain is redone once."""
    return {key: value for key, value in message.headers.items() if key in (bus.FORCE_HEADER, bus.ATTEMPT_HEADER)}


async def publish_failure(
    context: StageContext, *, run_id: str, snapshot_id: str, error: SynoError, input_reference: str
) -> None:
    failure = PipelineFailed(
        run_id=run_id,
        snapshot_id=snapshot_id,
        stage=context.stage,
        reason_code=error.code,
        message=error.message,
        is_retryable=error.retryable,
        input_reference=input_reference,
    )
    await bus.publish_event(
        context.broker,
        bus.PIPELINE_FAILED,
        failure,
        stream_name=context.stream_name,
        attempt=f"{context.stage}:{run_id}",  # a later run's failure of the same snapshot is a new fact
    )


async def parse_event(context: StageContext, model: type[EventT], message: NatsMessage) -> EventT | None:
    """The event in the message, or None after reporting a malformed body (never retried)."""
    try:
        return model.model_validate_json(message.body)
    except ValidationError as error:
        get_logger().error("event_rejected", subject=message.raw_message.subject, errors=error.errors()[:5])
        await publish_failure(
            context,
            run_id="unknown",
            snapshot_id="unknown",
            error=SynoError(f"malformed {model.__name__} event: {error.error_count()} errors", code="bad_event"),
            input_reference=f"{message.raw_message.subject}:{message.message_id}",
        )
        return None


async def run_stage(
    context: StageContext,
    *,
    event_in: Event,
    message: NatsMessage,
    work: Callable[[], Awaitable[StageOutcome]],
) -> StageOutcome | None:
    log = get_logger().bind(stage=context.stage, run_id=event_in.run_id, snapshot_id=event_in.snapshot_id)
    input_reference = f"{message.raw_message.subject}:{message.headers.get('Nats-Msg-Id', message.message_id)}"
    replay = replay_headers(message)
    if bus.FORCE_HEADER not in replay:
        done = await db.completed_output(context.pool, snapshot_id=event_in.snapshot_id, stage=context.stage)
        if done is not None:
            # Completed before (redelivery or replay): publish the recorded result again; the
            # Nats-Msg-Id makes JetStream drop it if the first publish went through.
            subject, event_json = done
            await context.broker.publish(
                event_json,
                subject,
                headers={"Nats-Msg-Id": bus.message_id(subject, event_in.snapshot_id)},
                stream=context.stream_name,
            )
            log.info("stage_skipped", reason="already completed for this snapshot")
            return None

    delivery = delivery_count(message)
    stage_run_id = await db.stage_started(
        context.pool,
        run_id=event_in.run_id,
        snapshot_id=event_in.snapshot_id,
        stage=context.stage,
        delivery=delivery,
    )
    started = time.perf_counter()
    with tracer.start_as_current_span(f"{context.stage}.run") as span:
        span.set_attribute("syno.run_id", event_in.run_id)
        span.set_attribute("syno.snapshot_id", event_in.snapshot_id)
        try:
            outcome = await work()
        except Exception as raised:
            # A SynoError says itself whether a retry can help; anything unknown is treated as
            # transient: retried with a spaced delay, then reported. Never swallowed.
            error = raised if isinstance(raised, SynoError) else _unexpected(raised)
            is_final = not error.retryable or delivery >= context.max_deliver
            await _record_failure(context, stage_run_id, error, is_final=is_final)
            log.warning(
                "stage_failed",
                code=error.code,
                error=error.message,
                delivery=delivery,
                final=is_final,
                exc_info=not isinstance(raised, SynoError),
            )
            if not is_final:
                raise NackMessage(delay=bus.retry_delay(delivery)) from raised
            await publish_failure(
                context,
                run_id=event_in.run_id,
                snapshot_id=event_in.snapshot_id,
                error=error,
                input_reference=input_reference,
            )
            return None

    await db.stage_finished(context.pool, stage_run_id, status="succeeded", rows=outcome.rows, details=outcome.details)
    await bus.publish_event(
        context.broker,
        outcome.subject,
        outcome.event,
        stream_name=context.stream_name,
        attempt=replay.get(bus.ATTEMPT_HEADER),
        headers=replay,
    )
    log.info("stage_succeeded", seconds=round(time.perf_counter() - started, 3), rows=outcome.rows)
    return outcome


def _unexpected(raised: Exception) -> SynoError:
    error = SynoError(f"{type(raised).__name__}: {raised}", code="unexpected_error")
    error.retryable = True
    return error


async def _record_failure(context: StageContext, stage_run_id: int, error: SynoError, *, is_final: bool) -> None:
    await db.stage_finished(
        context.pool,
        stage_run_id,
        status="failed" if is_final else "retrying",
        error_code=error.code,
        error_message=error.message,
    )
