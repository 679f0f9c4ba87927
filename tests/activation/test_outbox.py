"""Side effects exactly once: run summaries, Metabase refreshes (here through an n8n webhook) and alerts leave
through ops.activation_outbox. Against the embedded PostgreSQL (and NATS for the stage protocol) and a local
HTTP server that counts what each channel receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from activation_events import FAILURE, forecast_event
from activation_fakes import LocalHTTPServer, Request, local_service
from activation_marts import FORECAST_RUN, SNAPSHOT_MARTS
from pydantic import SecretStr

from syno_activation import outbox
from syno_activation.deliverer import Channels, deliver_due, deliver_periodically
from syno_activation.handlers import activate, alert
from syno_activation.outbox import message_entries
from syno_activation.rendering import Message
from syno_activation.settings import ActivationOptions, ActivationService, ActivationSettings, MetabaseSettings
from syno_shared import bus
from syno_shared.embedded import EmbeddedNats
from syno_shared.events import ActivationCompleted, DeliveryResult
from syno_shared.stage import StageContext, StageInput, StageOutcome, run_stage_input

pytestmark = pytest.mark.integration

TEAM_A, TEAM_B, N8N = "/hooks/team-a-SECRET1", "/hooks/team-b-SECRET2", "/webhook/n8n-SECRET3"
EVENT = forecast_event().model_copy(update={"forecast_run_id": FORECAST_RUN, "marts_schema": SNAPSHOT_MARTS})
DELIVERED = DeliveryResult(target="json", is_ok=True, detail="delivered to json://127.0.0.1")


class Channel:
    """The local server as every channel: two JSON webhooks and the n8n webhook. `failing` paths answer 500."""

    def __init__(self, http_server: Callable[..., LocalHTTPServer]) -> None:
        self.failing: set[str] = set()
        self.server = http_server(self.answer)

    def answer(self, request: Request) -> tuple[int, Any]:
        return (500, {"error": "down"}) if request.path in self.failing else (200, {"ok": True})

    def received(self) -> Counter[str]:
        return Counter(request.path for request in self.server.requests)

    def settings(self, **outbox_policy: Any) -> ActivationSettings:
        return ActivationSettings(
            activation=ActivationOptions(
                notify_urls=[SecretStr(f"json://127.0.0.1:{self.server.port}{path}") for path in (TEAM_A, TEAM_B)],
                metabase=MetabaseSettings(mode="n8n", n8n_webhook_url=SecretStr(self.server.url + N8N)),
                **outbox_policy,
            )
        )


@pytest.fixture
def channel(http_server: Callable[..., LocalHTTPServer]) -> Channel:
    return Channel(http_server)


async def outbox_rows(pool: asyncpg.Pool) -> list[tuple[str, str, int]]:
    rows = await pool.fetch("select kind, status, attempts from ops.activation_outbox order by kind, status, attempts")
    return [(row["kind"], row["status"], row["attempts"]) for row in rows]


async def test_a_forecast_handled_twice_sends_the_refresh_and_the_summary_once_per_channel(
    pool: asyncpg.Pool, channel: Channel
) -> None:
    """The second time (a replay, or a redelivery after a crash before the ack) finds every row sent."""
    service = local_service(pool, channel.settings())

    first = await activate(service, EVENT)
    second = await activate(service, EVENT)

    assert channel.received() == {N8N: 1, TEAM_A: 1, TEAM_B: 1}
    assert isinstance(first.event, ActivationCompleted) and isinstance(second.event, ActivationCompleted)
    assert first.event.notifications == [DELIVERED, DELIVERED]
    assert [(result.target, result.is_ok) for result in first.event.dashboards] == [("metabase:n8n", True)]
    assert [(result.target, result.is_ok, result.detail[:12]) for result in second.event.notifications] == [
        ("json", True, "already sent"),
        ("json", True, "already sent"),
    ]
    assert [(result.target, result.is_ok, result.detail[:12]) for result in second.event.dashboards] == [
        ("metabase", True, "already sent")
    ]
    assert await outbox_rows(pool) == [("metabase", "sent", 1), ("summary", "sent", 1), ("summary", "sent", 1)]
    stored = await pool.fetchval("select string_agg(channel || ' ' || payload::text, ' ') from ops.activation_outbox")
    assert "SECRET" not in stored  # channel ids and payloads name no URL


@pytest.fixture
async def stage_context(pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[StageContext]:
    """The stage protocol on a NATS server of this test's own."""
    server = EmbeddedNats(tmp_path)
    server.start()
    connection = await nats.connect(server.url)
    await connection.jetstream().add_stream(bus.stream_config("SYNO"))
    await connection.close()
    broker = bus.create_broker(server.url)
    await broker.connect()
    try:
        yield StageContext(stage="activation", broker=broker, pool=pool, stream_name="SYNO", max_deliver=3)
    finally:
        await broker.stop()
        server.stop()


async def test_redelivered_and_forced_forecasts_through_the_stage_protocol_send_once(
    stage_context: StageContext, channel: Channel
) -> None:
    service = local_service(stage_context.pool, channel.settings())

    async def work() -> StageOutcome:
        return await activate(service, EVENT)

    deliveries = [
        StageInput(run_id=EVENT.run_id, snapshot_id=EVENT.snapshot_id, reference="forecast.published:5"),
        StageInput(run_id=EVENT.run_id, snapshot_id=EVENT.snapshot_id, reference="forecast.published:5", delivery=2),
        StageInput(
            run_id=EVENT.run_id,
            snapshot_id=EVENT.snapshot_id,
            reference="forecast.published:9",
            replay={bus.FORCE_HEADER: "1", bus.ATTEMPT_HEADER: "replay-1"},
        ),
    ]
    outcomes = [await run_stage_input(stage_context, stage_input=each, work=work) for each in deliveries]

    assert [type(outcome).__name__ for outcome in outcomes] == ["StageOutcome", "NoneType", "StageOutcome"]
    assert channel.received() == {N8N: 1, TEAM_A: 1, TEAM_B: 1}
    completion = await stage_context.pool.fetchval(
        "select output_event::text from ops.stage_completions where stage = 'activation'"
    )
    recorded = ActivationCompleted.model_validate_json(completion)  # the forced run's, with what it found
    assert [result.detail[:12] for result in recorded.notifications] == ["already sent", "already sent"]


async def test_a_pending_row_left_by_a_crash_is_sent_once_by_the_sweep(pool: asyncpg.Pool, channel: Channel) -> None:
    """The stage committed its summary rows and died before sending: the sweep started with the service sends
    them, and the sweeps after it find nothing to send."""
    channels = channel.settings().activation.channels()
    entries = message_entries(
        run_id="run-crashed",
        snapshot_id="snap-crashed",
        kind="summary",
        message=Message(title="syno: forecasts", body="**Forecast**"),
        channels=channels.summary_channels,
    )
    async with pool.acquire() as connection, connection.transaction():
        await outbox.enqueue(connection, entries)

    sweep = asyncio.create_task(deliver_periodically(pool, lambda: channels, every=0.05))
    try:
        for _ in range(600):  # until the sweep has sent them (30 s at most)
            if not await pool.fetchval("select count(*) from ops.activation_outbox where status = 'pending'"):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # several more sweeps
    finally:
        sweep.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweep

    assert channel.received() == {TEAM_A: 1, TEAM_B: 1}
    assert [request.json["title"] for request in channel.server.requests] == ["syno: forecasts"] * 2
    assert await outbox_rows(pool) == [("summary", "sent", 1), ("summary", "sent", 1)]


async def test_a_failed_delivery_is_retried_when_due_then_given_up_and_queued_again_by_a_replay(
    pool: asyncpg.Pool, channel: Channel
) -> None:
    channel.failing = {TEAM_A}
    service = local_service(pool, channel.settings(outbox_max_attempts=2, outbox_retry_seconds=0.5))
    channels = service.settings.activation.channels()

    first = await activate(service, EVENT)
    assert isinstance(first.event, ActivationCompleted)
    assert [result.is_ok for result in first.event.notifications] == [False, True]
    assert await deliver_due(pool, channels) == []  # the retry is not due yet
    await asyncio.sleep(0.6)
    retried = await deliver_due(pool, channels)  # second and last attempt
    assert [(item.key.kind, item.result.is_ok) for item in retried] == [("summary", False)]
    await asyncio.sleep(1.1)
    assert await deliver_due(pool, channels) == []  # given up: 'failed' is never swept
    assert await outbox_rows(pool) == [("metabase", "sent", 1), ("summary", "failed", 2), ("summary", "sent", 1)]

    channel.failing = set()
    replayed = await activate(service, EVENT)  # a person replays the run: only the failed row is sent again
    assert isinstance(replayed.event, ActivationCompleted)
    assert replayed.event.notifications[0] == DELIVERED
    assert channel.received() == {N8N: 1, TEAM_A: 3, TEAM_B: 1}


async def test_a_row_whose_channel_is_no_longer_configured_fails_without_a_request(
    pool: asyncpg.Pool, channel: Channel
) -> None:
    entries = message_entries(
        run_id="run-1", snapshot_id="snap-1", kind="summary", message=Message("t", "b"), channels=["json:0123"]
    )
    async with pool.acquire() as connection, connection.transaction():
        await outbox.enqueue(connection, entries)

    [item] = await deliver_due(pool, channel.settings().activation.channels())

    expected = "channel json:0123 is no longer among the summary targets"
    assert (item.result.is_ok, item.result.detail) == (False, expected)
    assert (await outbox_rows(pool), channel.received()) == ([("summary", "failed", 1)], {})


async def test_a_redelivered_pipeline_failed_alerts_once_per_failed_input(pool: asyncpg.Pool, channel: Channel) -> None:
    service: ActivationService = local_service(pool, channel.settings())
    other_input = FAILURE.model_copy(update={"input_reference": "marts.ready:18"})

    for failure in (FAILURE, FAILURE, other_input):
        await alert(service, failure)

    assert channel.received() == {TEAM_A: 2, TEAM_B: 2}
    alerts = await pool.fetch("select input_reference, notifications::text from ops.alerts order by input_reference")
    assert [row["input_reference"] for row in alerts] == ["marts.ready:18", FAILURE.input_reference]
    assert [json.loads(row["notifications"]) for row in alerts] == [[DELIVERED.model_dump()] * 2] * 2
    assert await outbox_rows(pool) == [("alert", "sent", 1)] * 4


def test_channels_name_each_url_by_scheme_and_hash_without_its_secrets() -> None:
    urls = ["json://127.0.0.1:9/hooks/SECRET-a", "json://127.0.0.1:9/hooks/SECRET-b", "slack://T0/B0/SECRET-c"]
    channels = ActivationOptions(notify_urls=[SecretStr(url) for url in urls]).channels()

    assert [channel.split(":")[0] for channel in channels.summary_channels] == ["json", "json", "slack"]
    assert len(set(channels.summary_channels)) == 3 and not any("SECRET" in c for c in channels.summary_channels)
    assert (list(channels.summary_urls.values()), list(channels.alert_urls.values())) == (urls, urls)
    assert (channels.metabase_channel, Channels().retry_delay(1), Channels().retry_delay(3)) == (None, 60.0, 240.0)


async def test_summaries_go_only_to_summary_targets_and_alerts_only_to_alert_targets(
    pool: asyncpg.Pool, channel: Channel
) -> None:
    """SYNO_ACTIVATION__SUMMARY_URLS and __ALERT_URLS split what notify_urls sends to both: the run summary reaches
    team A only, the pipeline.failed alert team B only, and the notify URL (the fallback) neither."""
    url = f"json://127.0.0.1:{channel.server.port}"
    settings = ActivationSettings(
        activation=ActivationOptions(
            notify_urls=[SecretStr(url + N8N)],
            summary_urls=[SecretStr(url + TEAM_A)],
            alert_urls=[SecretStr(url + TEAM_B)],
        )
    )
    service = local_service(pool, settings)

    completed = await activate(service, EVENT)
    await alert(service, FAILURE)

    assert isinstance(completed.event, ActivationCompleted) and completed.event.notifications == [DELIVERED]
    assert [(request.path, request.json["title"]) for request in channel.server.requests] == [
        (TEAM_A, "syno: forecasts for Q4 2025 from sellout.xlsx"),
        (TEAM_B, "syno: transform failed (dbt_test_failed)"),
    ]
    assert await outbox_rows(pool) == [("alert", "sent", 1), ("summary", "sent", 1)]


def test_summary_and_alert_targets_fall_back_to_notify_urls_each_on_its_own() -> None:
    """An existing deployment with notify_urls only keeps sending both there; setting alert_urls alone moves only
    the alerts."""
    notify, pager = "json://127.0.0.1:9/notify-SECRET", "json://127.0.0.1:9/pager-SECRET"
    only_notify = ActivationOptions(notify_urls=[SecretStr(notify)]).channels()
    with_pager = ActivationOptions(notify_urls=[SecretStr(notify)], alert_urls=[SecretStr(pager)]).channels()

    assert (list(only_notify.summary_urls.values()), list(only_notify.alert_urls.values())) == ([notify], [notify])
    assert (list(with_pager.summary_urls.values()), list(with_pager.alert_urls.values())) == ([notify], [pager])
