"""Subjects, the one JetStream stream, and how services publish and consume on it.

Every subject lives in one stream (file storage) so any event can be replayed. Consumers are
durable pull consumers with explicit acks, a bounded number of deliveries and spaced retries.
Publishes carry `Nats-Msg-Id = <subject>:<snapshot_id>[:<attempt>]` so JetStream drops
duplicates inside its window.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

import nats
import nats.errors
import nats.js.errors
from faststream.nats import (
    ConsumerConfig,
    DeliverPolicy,
    JStream,
    NatsBroker,
    PubAck,
    StorageType,
    StreamConfig,
)
from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from faststream.nats.publisher.usecase import LogicPublisher
from faststream.nats.security import NatsUserPassword
from nats.aio.client import DEFAULT_INBOX_PREFIX
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy as NatsAckPolicy
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from syno_shared.errors import SynoError
from syno_shared.events import (
    ActivationCompleted,
    Event,
    ForecastPublished,
    MartsReady,
    PipelineFailed,
    WorkbookLanded,
)

WORKBOOK_LANDED: Final = "workbook.landed"
MARTS_READY: Final = "marts.ready"
FORECAST_PUBLISHED: Final = "forecast.published"
ACTIVATION_COMPLETED: Final = "activation.completed"
PIPELINE_FAILED: Final = "pipeline.failed"
ALL_SUBJECTS: Final = (WORKBOOK_LANDED, MARTS_READY, FORECAST_PUBLISHED, ACTIVATION_COMPLETED, PIPELINE_FAILED)
# The event each subject carries: the contract the AsyncAPI document (docs/asyncapi.yaml) is generated from.
EVENT_MODELS: Final[Mapping[str, type[Event]]] = {
    WORKBOOK_LANDED: WorkbookLanded,
    MARTS_READY: MartsReady,
    FORECAST_PUBLISHED: ForecastPublished,
    ACTIVATION_COMPLETED: ActivationCompleted,
    PIPELINE_FAILED: PipelineFailed,
}

# Header a replay sets so a stage redoes work it already recorded as complete.
FORCE_HEADER: Final = "Syno-Force"
# Header naming a replay attempt; it becomes part of every downstream Nats-Msg-Id.
ATTEMPT_HEADER: Final = "Syno-Attempt"
# Header of a rehearsal (`syno smoke`): every stage runs, the build is never published, nothing is sent.
REHEARSAL_HEADER: Final = "Syno-Rehearsal"
# A workbook on the share whose name starts so is a rehearsal: ingestion lands it with REHEARSAL_HEADER.
REHEARSAL_FILE_PREFIX: Final = "syno-smoke-"

DUPLICATE_WINDOW_SECONDS: Final = 24 * 3600.0
# A stage at work keeps its message alive with an in-progress ack every IN_PROGRESS_SECONDS, so the ack
# wait can stay short: a worker that dies mid-message has it redelivered within ACK_WAIT_SECONDS.
ACK_WAIT_SECONDS: Final = 30.0
IN_PROGRESS_SECONDS: Final = 10.0
RETRY_DELAYS_SECONDS: Final = (5.0, 30.0, 120.0, 600.0)


STREAM_MAX_AGE_SECONDS: Final = 30 * 24 * 3600.0  # a month of history to replay from


def stream(name: str = "SYNO") -> JStream:
    """The one stream as FastStream declares it: file storage, 24 h duplicate window, 30 days kept."""
    return JStream(
        name=name,
        subjects=list(ALL_SUBJECTS),
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_age=STREAM_MAX_AGE_SECONDS,
    )


def stream_config(name: str = "SYNO") -> StreamConfig:
    """The same stream as a plain NATS config (to create it before anything is published): derived, not restated."""
    declared = stream(name)
    return dataclasses.replace(declared.config, subjects=list(declared.subjects))


def consumer_config(durable: str, max_deliver: int, *, ack_wait: float = ACK_WAIT_SECONDS) -> ConsumerConfig:
    """A durable consumer with explicit acks, a bounded number of deliveries and spaced redeliveries.

    The backoff spaces redeliveries after an ack timeout (a worker that died) as the handlers space
    their own naks; its first step is the ack wait.
    """
    return ConsumerConfig(
        durable_name=durable,
        ack_policy=NatsAckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        max_deliver=max_deliver,
        ack_wait=ack_wait,
        # JetStream wants fewer backoff steps than deliveries.
        backoff=[ack_wait, *RETRY_DELAYS_SECONDS[1:]][: max_deliver - 1] if max_deliver > 1 else None,
    )


def retry_delay(delivery: int) -> float:
    """Seconds before the next delivery after `delivery` failed ones (1-based)."""
    return RETRY_DELAYS_SECONDS[min(delivery, len(RETRY_DELAYS_SECONDS)) - 1]


_REPLAY: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("syno_replay", default=None)


@contextlib.contextmanager
def replay_context(replay: Mapping[str, str]) -> Iterator[None]:
    """The replay headers of the input a stage is handling, for the completion it records (its outbox row)."""
    token = _REPLAY.set(dict(replay))
    try:
        yield
    finally:
        _REPLAY.reset(token)


def current_replay() -> dict[str, str]:
    return dict(_REPLAY.get() or {})


def message_id(subject: str, snapshot_id: str, attempt: str | None = None) -> str:
    return f"{subject}:{snapshot_id}" + (f":{attempt}" if attempt else "")


def inbox_prefix(user: str) -> str:
    """Where a NATS user's replies arrive (JetStream acks, pulled messages): the only subjects it may receive on."""
    return f"_INBOX.{user}"


def pull_inbox_prefix(user: str | None) -> bytes:
    """The inbox prefix of a pull subscriber (FastStream's own default is the shared `_INBOX.`)."""
    return f"{inbox_prefix(user)}.".encode() if user is not None else b"_INBOX."


def _login(user: str | None, password: str | None) -> dict[str, Any]:
    """nats.connect options for a user (none: the URL's own, if any), with the user's inbox prefix."""
    if user is None:
        return {}
    return {"user": user, "password": password or "", "inbox_prefix": inbox_prefix(user)}


def create_broker(
    nats_url: str,
    *,
    user: str | None = None,
    password: str | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
) -> NatsBroker:
    """A broker whose messages carry the W3C trace context in their headers.

    With a `user`, it logs in as that user (SYNO_NATS_USER / SYNO_NATS_PASSWORD) and takes its replies on
    the user's own inbox prefix, the only subjects a service user may subscribe to (syno_shared.access).
    """
    return NatsBroker(
        nats_url,
        middlewares=[NatsTelemetryMiddleware(tracer_provider=tracer_provider, meter_provider=meter_provider)],
        connect_timeout=10,
        graceful_timeout=30,
        # Reconnect forever with backoff: a NATS restart never leaves a service lingering disconnected.
        max_reconnect_attempts=-1,
        reconnect_time_wait=2,
        security=NatsUserPassword(user, password or "") if user is not None else None,
        inbox_prefix=inbox_prefix(user) if user is not None else DEFAULT_INBOX_PREFIX,
    )


async def connect(nats_url: str, *, user: str | None = None, password: str | None = None) -> NatsClient:
    """A plain NATS connection as `user` (see `create_broker`), for work outside a broker."""
    return await nats.connect(nats_url, **_login(user, password))


def declare_publishers(broker: NatsBroker, subjects: Iterable[str], service: str) -> dict[str, LogicPublisher]:
    """A typed publisher per event subject a service publishes: what it sends, as the AsyncAPI document lists it.

    Events leave through these (stage.publish_completion, publish_event), so what is documented is what is sent.
    """
    return {
        subject: broker.publisher(
            subject,
            title=f"{subject}:from:syno-{service}",
            description=f"syno-{service} publishes {EVENT_MODELS[subject].__name__}: {EVENT_MODELS[subject].__doc__}",
            schema=EVENT_MODELS[subject],
        )
        for subject in subjects
        if subject in EVENT_MODELS
    }


async def publish_raw(
    broker: NatsBroker,
    body: str | bytes,
    subject: str,
    *,
    headers: dict[str, str],
    stream_name: str,
    publishers: Mapping[str, LogicPublisher] | None = None,
    correlation_id: str | None = None,
) -> PubAck | None:
    """Publish an event's JSON through the subject's declared publisher (the broker itself when none is declared,
    e.g. a test's bare context)."""
    publisher = (publishers or {}).get(subject)
    if publisher is not None:
        return await publisher.publish(body, headers=headers, stream=stream_name, correlation_id=correlation_id)
    ack: PubAck = await broker.publish(
        body, subject, headers=headers, stream=stream_name, correlation_id=correlation_id
    )
    return ack


async def publish_event(
    broker: NatsBroker,
    subject: str,
    event: Event,
    *,
    stream_name: str,
    attempt: str | None = None,
    headers: dict[str, str] | None = None,
    publishers: Mapping[str, LogicPublisher] | None = None,
) -> PubAck | None:
    """Publish to JetStream with a deterministic Nats-Msg-Id; a repeat inside the window is dropped (the PubAck
    says `duplicate`; FastStream's in-memory test broker answers None)."""
    all_headers = {"Nats-Msg-Id": message_id(subject, event.snapshot_id, attempt), **(headers or {})}
    return await publish_raw(
        broker,
        event.model_dump_json(),
        subject,
        headers=all_headers,
        stream_name=stream_name,
        publishers=publishers,
        correlation_id=event.run_id,
    )


class StreamConfigError(SynoError):
    code = "stream_config_differs"


async def ensure_streams(
    nats_url: str, stream_name: str, *, user: str | None = None, password: str | None = None
) -> None:
    """Create (or update) the event, dead-letter and advisory streams before anyone publishes or gives up.

    A service user may only create them (nothing happens when they exist as configured here); updating a
    stream whose configuration changed is the operator's (the deployment's setup job, or the CLI runtime).
    """
    from syno_shared import deadletter  # the dead-letter module builds on this one

    connection = await connect(nats_url, user=user, password=password)
    try:
        js = connection.jetstream()
        for config in (stream_config(stream_name), *deadletter.stream_configs(stream_name)):
            try:
                await js.add_stream(config)
            except nats.js.errors.BadRequestError:
                try:
                    await js.update_stream(config)
                except nats.errors.TimeoutError:  # a refused request is never answered
                    raise StreamConfigError(
                        f"stream {config.name} differs from this version's configuration and NATS user "
                        f"{user or '(from the URL)'} may not update it: run the deployment's setup (as the "
                        "operator) first"
                    ) from None  # a refusal, not a server to wait for (a TimeoutError cause reads as one)
    finally:
        await connection.close()
