"""The activation service as it runs (the real app in this process: migrations, consumers, the outbox sweep) on a
NATS server of the test's own and a copy of the dbt-built snapshot, with a local server counting what each
channel receives."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from activation_events import forecast_event
from activation_fakes import LocalHTTPServer, Request
from activation_marts import FORECAST_RUN, SNAPSHOT_MARTS
from pydantic import SecretStr

from syno_activation import outbox
from syno_activation.main import create_app
from syno_activation.outbox import message_entries
from syno_activation.rendering import Message
from syno_activation.settings import ActivationOptions, ActivationSettings
from syno_shared import bus, db
from syno_shared.embedded import EmbeddedNats

pytestmark = pytest.mark.integration

TEAM_A, TEAM_B = "/hooks/team-a", "/hooks/team-b"
EVENT = forecast_event().model_copy(update={"forecast_run_id": FORECAST_RUN, "marts_schema": SNAPSHOT_MARTS})


@pytest.fixture
def nats_url(tmp_path: Path) -> Iterator[str]:
    folder = tmp_path / "nats"
    folder.mkdir()
    server = EmbeddedNats(folder)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def webhook(http_server: Callable[..., LocalHTTPServer]) -> LocalHTTPServer:
    def accept(request: Request) -> tuple[int, object]:
        return 200, {"ok": True}

    return http_server(accept)


@pytest.fixture
def settings(nats_url: str, marts_dsn: str, webhook: LocalHTTPServer, tmp_path: Path) -> ActivationSettings:
    return ActivationSettings(
        nats_url=nats_url,
        pg_dsn=marts_dsn,
        data_dir=tmp_path,
        log_format="console",
        activation=ActivationOptions(
            notify_urls=[SecretStr(f"json://127.0.0.1:{webhook.port}{path}") for path in (TEAM_A, TEAM_B)],
        ),
    )


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(dsn)
    try:
        yield pool
    finally:
        await pool.close()


async def until(condition: Callable[[], Awaitable[bool]], seconds: float = 60.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def received(webhook: LocalHTTPServer) -> Counter[str]:
    return Counter(request.path for request in webhook.requests)


async def test_the_service_sends_what_a_crash_left_in_the_outbox_when_it_starts(
    settings: ActivationSettings, marts_dsn: str, webhook: LocalHTTPServer
) -> None:
    async with connected(marts_dsn) as pool:
        entries = message_entries(
            run_id="run-crashed",
            snapshot_id="snap-crashed",
            kind="summary",
            message=Message(title="syno: forecasts", body="**Forecast**"),
            channels=settings.activation.channels().summary_channels,
        )
        async with pool.acquire() as connection, connection.transaction():
            await outbox.enqueue(connection, entries)  # committed, then the process died

        async def all_sent() -> bool:
            return bool(await pool.fetchval("select bool_and(status = 'sent') from ops.activation_outbox"))

        async with create_app(settings):
            await until(all_sent)
            await asyncio.sleep(0.5)

    assert received(webhook) == {TEAM_A: 1, TEAM_B: 1}


async def test_a_forecast_published_twice_the_second_time_forced_sends_one_summary_per_channel(
    settings: ActivationSettings, marts_dsn: str, webhook: LocalHTTPServer
) -> None:
    app = create_app(settings)
    assert app.broker is not None
    async with connected(marts_dsn) as pool, app:

        def succeeded(wanted: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                runs = await pool.fetchval(
                    "select count(*) from ops.stage_runs where stage = 'activation' and status = 'succeeded'"
                )
                return bool(runs >= wanted)

            return check

        await bus.publish_event(app.broker, bus.FORECAST_PUBLISHED, EVENT, stream_name=settings.stream_name)
        await until(succeeded(1))
        replay = {bus.FORCE_HEADER: "1", bus.ATTEMPT_HEADER: "replay-1"}
        await bus.publish_event(
            app.broker, bus.FORECAST_PUBLISHED, EVENT, stream_name=settings.stream_name, attempt="replay-1",
            headers=replay,
        )  # fmt: skip
        await until(succeeded(2))

    assert received(webhook) == {TEAM_A: 1, TEAM_B: 1}
