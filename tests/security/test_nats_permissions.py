"""No service can do more than its job on the bus: the embedded nats-server refuses what a user may not do.

Each test runs its own nats-server, started exactly as the embedded runtime starts it (syno_shared.embedded:
one user per service, the operator, the permissions of syno_shared.access), so a refused publish is the
server's own decision. A refused publish or request is never answered: the client sees a timeout, the
server reports a permissions violation, and nothing is stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js.api import StreamConfig

from syno_shared import access, bus, control, deadletter
from syno_shared.embedded import EmbeddedNats

pytestmark = pytest.mark.integration

STREAM = "SYNO"
REFUSED = 0.5  # seconds to wait for an answer that a refused request never gets


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    running = EmbeddedNats(tmp_path)
    running.start()
    asyncio.run(bus.ensure_streams(running.url, STREAM))  # as the operator, as the CLI runtime does
    yield running
    running.stop()


class Session:
    """A connection as one user, keeping the errors the server sent it (permissions violations)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.connection: Client | None = None

    async def open(self, server: EmbeddedNats, user: str) -> Client:
        async def on_error(error: Exception) -> None:
            self.errors.append(str(error))

        self.connection = await nats.connect(
            server.address,
            user=user,
            password=server.passwords[user],
            inbox_prefix=bus.inbox_prefix(user),
            error_cb=on_error,
            allow_reconnect=False,
        )
        return self.connection

    async def violations(self) -> list[str]:
        await asyncio.sleep(0.2)  # the -ERR arrives asynchronously
        return [error for error in self.errors if "permissions violation" in error.lower()]


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    opened = Session()
    yield opened
    if opened.connection is not None:
        await opened.connection.close()


async def stored(server: EmbeddedNats, stream: str, subject: str) -> int:
    """How many messages of `subject` the stream holds, as the operator sees it."""
    connection = await nats.connect(server.url)
    try:
        info = await connection.jetstream().stream_info(stream, subjects_filter=subject)
        return (info.state.subjects or {}).get(subject, 0)
    finally:
        await connection.close()


OTHERS_EVENTS = [
    (service, subject)
    for service in access.SERVICES
    for subject in bus.ALL_SUBJECTS
    if subject not in access.service_bus(service).publishes
]


@pytest.mark.parametrize(("service", "subject"), OTHERS_EVENTS)
async def test_a_service_user_cannot_publish_another_services_event(
    server: EmbeddedNats, session: Session, service: str, subject: str
) -> None:
    """e.g. ingestion cannot announce forecast.published; only activation's user could, and nobody reads it."""
    js = (await session.open(server, service)).jetstream()
    with pytest.raises(nats.errors.TimeoutError):
        await js.publish(subject, b"{}", stream=STREAM, timeout=REFUSED, headers={"Nats-Msg-Id": f"forged-{service}"})
    assert await session.violations() == [f'nats: permissions violation for publish to "{subject}"']
    assert await stored(server, STREAM, subject) == 0


@pytest.mark.parametrize("service", access.SERVICES)
async def test_a_service_user_publishes_its_own_events(server: EmbeddedNats, session: Session, service: str) -> None:
    """The control of the test above: the same connection, its own subjects, acknowledged and stored."""
    js = (await session.open(server, service)).jetstream()
    for subject in (s for s in access.service_bus(service).publishes if s in bus.ALL_SUBJECTS):
        ack = await js.publish(subject, b"{}", stream=STREAM, headers={"Nats-Msg-Id": f"own-{service}-{subject}"})
        assert ack.stream == STREAM
        assert await stored(server, STREAM, subject) >= 1
    assert await session.violations() == []


@pytest.mark.parametrize("service", access.SERVICES)
@pytest.mark.parametrize("stream", [STREAM, deadletter.DLQ_STREAM, deadletter.ADVISORY_STREAM])
async def test_a_service_user_cannot_delete_purge_or_reconfigure_a_stream(
    server: EmbeddedNats, session: Session, service: str, stream: str
) -> None:
    js = (await session.open(server, service)).jetstream(timeout=REFUSED)
    before = await js.stream_info(stream)  # reading a shared stream's info is allowed
    with pytest.raises(nats.errors.TimeoutError):
        await js.delete_stream(stream)
    with pytest.raises(nats.errors.TimeoutError):
        await js.purge_stream(stream)
    changed = StreamConfig(name=stream, subjects=before.config.subjects, max_age=1.0)
    with pytest.raises(nats.errors.TimeoutError):
        await js.update_stream(changed)
    assert len(await session.violations()) == 3
    operator = await nats.connect(server.url)
    try:
        after = await operator.jetstream().stream_info(stream)
    finally:
        await operator.close()
    assert after.config.max_age == before.config.max_age


@pytest.mark.parametrize("service", access.SERVICES)
async def test_a_service_user_cannot_read_another_users_replies(
    server: EmbeddedNats, session: Session, service: str
) -> None:
    """Pulled messages and acks arrive on the puller's inbox: nobody else may subscribe there, nor to the events."""
    connection = await session.open(server, service)
    other = next(user for user in access.SERVICES if user != service)
    for subject in ("_INBOX.>", f"{bus.inbox_prefix(other)}.>", bus.FORECAST_PUBLISHED, ">"):
        await connection.subscribe(subject)
    await connection.flush()
    assert len(await session.violations()) == 4


async def test_a_service_user_cannot_consume_as_another_service(server: EmbeddedNats, session: Session) -> None:
    """Ingestion cannot pull transform's input, nor open a consumer of its own on forecasts."""
    js = (await session.open(server, "ingestion")).jetstream(timeout=REFUSED)
    with pytest.raises(nats.errors.TimeoutError):
        await js.consumer_info(STREAM, "syno-transform")
    with pytest.raises(nats.errors.TimeoutError):
        await js.pull_subscribe(bus.FORECAST_PUBLISHED, durable="snoop", stream=STREAM)
    assert len(await session.violations()) >= 2


async def test_forecast_alone_manages_its_work_queue(server: EmbeddedNats, session: Session) -> None:
    """forecast may create and update its own work queue; transform may not even create it."""
    config = StreamConfig(name=access.FORECAST_WORK_STREAM, subjects=[access.FORECAST_WORK_SUBJECTS])
    forecast = (await session.open(server, "forecast")).jetstream()
    await forecast.add_stream(config)
    await forecast.update_stream(StreamConfig(name=config.name, subjects=config.subjects, max_age=3600.0))
    other = Session()
    transform = (await other.open(server, "transform")).jetstream(timeout=REFUSED)
    try:
        with pytest.raises(nats.errors.TimeoutError):
            await transform.publish("forecast.work.x", b"{}", stream=access.FORECAST_WORK_STREAM, timeout=REFUSED)
        with pytest.raises(nats.errors.TimeoutError):
            await transform.delete_stream(access.FORECAST_WORK_STREAM)
    finally:
        assert other.connection is not None
        await other.connection.close()
    assert await session.violations() == []


async def test_a_service_creates_streams_but_only_the_operator_changes_them(server: EmbeddedNats) -> None:
    """At start-up a service's ensure_streams is a no-op on streams as configured; on a stream configured
    otherwise it stops with a clear error instead of changing it (the operator's setup does)."""
    for service in access.SERVICES:
        await bus.ensure_streams(server.address, STREAM, user=service, password=server.passwords[service])
    operator = await nats.connect(server.url)
    try:
        js = operator.jetstream()
        current = (await js.stream_info(deadletter.DLQ_STREAM)).config
        await js.update_stream(StreamConfig(name=current.name, subjects=current.subjects, max_age=3600.0))
    finally:
        await operator.close()
    with pytest.raises(bus.StreamConfigError, match="SYNO_DLQ differs"):
        await bus.ensure_streams(server.address, STREAM, user="ingestion", password=server.passwords["ingestion"])
    await bus.ensure_streams(server.url, STREAM)  # the operator puts it back


async def refusal(server: EmbeddedNats, connect: dict[str, str]) -> str:
    """What the server answers a CONNECT with these credentials (spoken by hand: a refused nats-py client
    leaves its socket behind)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        await reader.readline()  # INFO
        writer.write(f"CONNECT {json.dumps({'verbose': False, **connect})}\r\nPING\r\n".encode())
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()
    finally:
        writer.close()
        await writer.wait_closed()


async def test_nobody_connects_without_the_password(server: EmbeddedNats) -> None:
    assert await refusal(server, {"user": "ingestion", "pass": server.passwords["ingestion"]}) == "PONG"
    for credentials in ({}, {"user": "ingestion", "pass": "guessed"}, {"user": "operator", "pass": "guessed"}):
        assert await refusal(server, credentials) == "-ERR 'Authorization Violation'"


def test_forecast_work_queue_names_match_the_forecast_service() -> None:
    from syno_forecast import workqueue

    assert access.FORECAST_WORK_STREAM == workqueue.FORECAST_WORK_STREAM
    assert access.FORECAST_WORK_SUBJECTS == workqueue.FORECAST_WORK_SUBJECTS
    (work,) = (c for c in access.service_bus("forecast").consumes if c.stream == workqueue.FORECAST_WORK_STREAM)
    assert work.durable == f"syno-forecast-{workqueue.WORK_DURABLE_SUFFIX}"


def test_only_the_operator_may_do_everything() -> None:
    wide = {user for user in access.NATS_USERS if ">" in access.nats_permissions(user).publish}
    assert wide == {access.OPERATOR}
    for service in access.SERVICES:
        permissions = access.nats_permissions(service)
        assert permissions.subscribe == (f"_INBOX.{service}.>",)
        assert not [
            s
            for s in permissions.publish
            if "DELETE" in s or "PURGE" in s or (s.endswith(">") and "ACK" not in s and "CONSUMER.CREATE" not in s)
        ]


async def test_ingestion_reads_the_pause_switch_and_nobody_but_the_operator_writes_it(
    server: EmbeddedNats, session: Session
) -> None:
    """`syno pause ingestion` is the operator's: ingestion may read its own key in SYNO_CONTROL (every replica
    obeys it), but may not write it, nor read other keys; the other services cannot even read it."""
    operator = await nats.connect(server.url)
    try:
        await control.write_pause(operator.jetstream(), "ingestion", is_paused=True, reason="share maintenance")
        bucket = await operator.jetstream().key_value(control.CONTROL_BUCKET)
        await bucket.put("transform", b"{}")
    finally:
        await operator.close()
    js = (await session.open(server, "ingestion")).jetstream(timeout=REFUSED)
    state = await control.read_pause(js, "ingestion")
    assert (state.is_paused, state.reason) == (True, "share maintenance")
    assert await session.violations() == []
    with pytest.raises(nats.errors.TimeoutError):
        await js.publish(control.key_subject("ingestion"), b'{"is_paused": false}', timeout=REFUSED)
    with pytest.raises(nats.errors.TimeoutError):
        await (await js.key_value(control.CONTROL_BUCKET)).get("transform")
    assert len(await session.violations()) == 2
    for service in ("transform", "forecast", "activation"):
        other = Session()
        other_js = (await other.open(server, service)).jetstream(timeout=REFUSED)
        try:
            with pytest.raises(nats.errors.TimeoutError):
                await control.read_pause(other_js, "ingestion")
            assert len(await other.violations()) == 1
        finally:
            assert other.connection is not None
            await other.connection.close()


async def test_activation_counts_dead_letters_for_its_deadline_without_reading_them(
    server: EmbeddedNats, session: Session
) -> None:
    """The dead-letter deadline needs the stream's state (count, oldest, by subject), which activation's user may
    ask for; the dead letters themselves (bodies) stay the operator's."""
    from syno_activation.deadline_watch import read_dead_letters

    operator = await nats.connect(server.url)
    try:
        await operator.jetstream().publish("dlq.workbook.landed", b"{}", headers={"Nats-Msg-Id": "dlq:SYNO:1"})
    finally:
        await operator.close()
    connection = await session.open(server, "activation")
    letters = await read_dead_letters(connection)
    assert letters is not None
    assert (letters.count, letters.first_sequence, dict(letters.by_subject)) == (1, 1, {"dlq.workbook.landed": 1})
    assert letters.first_at is not None
    assert await session.violations() == []
    with pytest.raises(nats.errors.TimeoutError):
        await connection.jetstream(timeout=REFUSED).get_msg(deadletter.DLQ_STREAM, 1)
    assert len(await session.violations()) == 1
