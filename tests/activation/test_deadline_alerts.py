"""Deadlines that page a person, from real state: the activation service as it runs (in this process, its deadline
check every 0.3 s) on a NATS server and a database of the test's own, sending through apprise json:// to a local
HTTP server. Each alert arrives once, however many checks see it late, and a 'resolved' note once when it clears.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest
from activation_fakes import LocalHTTPServer, Request
from pydantic import SecretStr
from stage_app import landed, stand_in_stage

from syno_activation.deadline_watch import check_deadlines
from syno_activation.deadlines import DeadlineOptions
from syno_activation.main import create_app as create_activation
from syno_activation.settings import ActivationOptions, ActivationSettings
from syno_ingestion.main import create_app as create_ingestion
from syno_ingestion.settings import IngestionOptions, IngestionSettings
from syno_sample.workbook import SampleSpec, write_workbook
from syno_shared import bus, db, migrate
from syno_shared.service import build_service

pytestmark = pytest.mark.integration

OFF: dict[str, Any] = {
    "not_activated_minutes": None,
    "no_workbook_days": None,
    "heartbeat_stale_seconds": None,
    "dead_letter_minutes": None,
}


@pytest.fixture
def webhook(http_server: Callable[..., LocalHTTPServer]) -> LocalHTTPServer:
    def accept(request: Request) -> tuple[int, object]:
        return 200, {"ok": True}

    return http_server(accept)


def activation_settings(
    nats_url: str, pg_dsn: str, data_dir: Path, webhook: LocalHTTPServer, **deadlines: Any
) -> ActivationSettings:
    return ActivationSettings(
        nats_url=nats_url,
        pg_dsn=pg_dsn,
        data_dir=data_dir,
        log_format="console",
        activation=ActivationOptions(
            notify_urls=[SecretStr(f"json://127.0.0.1:{webhook.port}/alerts")],
            deadlines=DeadlineOptions(**{**OFF, "check_seconds": 0.3, **deadlines}),
        ),
    )


def ingestion_settings(nats_url: str, pg_dsn: str, data_dir: Path) -> IngestionSettings:
    return IngestionSettings(
        nats_url=nats_url,
        pg_dsn=pg_dsn,
        data_dir=data_dir,
        log_format="console",
        ingestion=IngestionOptions(poll_seconds=0.2),
    )


def titles(webhook: LocalHTTPServer, containing: str) -> list[str]:
    return [str(request.json["title"]) for request in webhook.requests if containing in str(request.json["title"])]


async def until(condition: Callable[[], Awaitable[bool] | bool], seconds: float = 90.0) -> None:
    for _ in range(int(seconds / 0.1)):
        result = condition()
        if await result if isinstance(result, Awaitable) else result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(dsn)
    try:
        yield pool
    finally:
        await pool.close()


async def record_completions(pool: asyncpg.Pool, snapshot_id: str, run_id: str, stages: tuple[str, ...]) -> None:
    """Completions as the stages record them (the stage protocol's own function), in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        for stage in stages:
            await db.record_completion(
                connection,
                snapshot_id=snapshot_id,
                stage=stage,
                run_id=run_id,
                subject=f"{stage}.done",
                event_json="{}",
            )


async def test_a_workbook_held_back_at_forecast_pages_once_naming_the_stage_and_resolves_once(
    nats_url: str, isolated_pg_dsn: str, data_dir: Path, webhook: LocalHTTPServer, tmp_path: Path
) -> None:
    """Real ingestion lands a workbook, a stand-in transform completes it, no forecast service runs: past the
    deadline (3 s) the alert names forecast as the stuck stage; it is sent once over many checks; when forecast and
    activation complete the snapshot, one 'resolved' note follows."""
    workbook = tmp_path / "sell-out.xlsx"
    write_workbook(workbook, SampleSpec(years=(2024,), rows_per_year=300, seed=5), data_dir / "mapping_table")
    ingestion = create_ingestion(ingestion_settings(nats_url, isolated_pg_dsn, data_dir))
    activation = create_activation(
        activation_settings(nats_url, isolated_pg_dsn, data_dir, webhook, not_activated_minutes=0.05)
    )
    async with stand_in_stage(nats_url, isolated_pg_dsn, data_dir) as transform, ingestion, activation:
        shutil.copyfile(workbook, data_dir / "raw" / "sell-out.xlsx")
        await until(lambda: len(titles(webhook, "not activated")) >= 1)
        await asyncio.sleep(2.0)  # about seven more checks, each seeing the workbook late
        assert transform.snapshots is not None
        [snapshot_id] = transform.snapshots
        async with connected(isolated_pg_dsn) as pool:
            run_id = await pool.fetchval(
                "select run_id from ops.stage_completions where snapshot_id = $1 and stage = 'ingestion'", snapshot_id
            )
            await record_completions(pool, snapshot_id, run_id, ("forecast", "activation"))
            await until(lambda: len(titles(webhook, "resolved")) >= 1)
            await asyncio.sleep(1.0)
            rows = await pool.fetch(
                "select deadline, occurrence, stage, resolved_at is not null as resolved from ops.deadline_alerts"
            )

    [alert] = [request.json for request in webhook.requests if request.json["title"].startswith("syno: workbook not")]
    assert alert["title"].endswith("stuck at forecast (not started)")
    assert "forecast has not started on it: is syno-forecast running?" in alert["message"]
    assert "- transform: completed" in alert["message"]
    assert [dict(row) for row in rows] == [
        {"deadline": "workbook_not_activated", "occurrence": snapshot_id, "stage": "forecast", "resolved": True}
    ]
    assert titles(webhook, "resolved") == [f"syno: resolved: {alert['title'].removeprefix('syno: ')}"]
    assert len(webhook.requests) == 2


async def test_no_workbook_for_days_pages_once_and_a_new_workbook_resolves_it(
    nats_url: str, isolated_pg_dsn: str, data_dir: Path, webhook: LocalHTTPServer
) -> None:
    old, new = "1" * 64, "2" * 64
    await asyncio.to_thread(migrate.apply_migrations, isolated_pg_dsn, migrate.installed_sources(["ops"]))
    async with connected(isolated_pg_dsn) as pool:
        await record_completions(pool, old, "run-old", ("ingestion", "transform", "forecast", "activation"))
        await pool.execute("update ops.stage_completions set completed_at = now() - interval '9 days'")
        activation = create_activation(
            activation_settings(nats_url, isolated_pg_dsn, data_dir, webhook, no_workbook_days=7)
        )
        async with activation:
            await until(lambda: len(titles(webhook, "no workbook")) >= 1)
            await asyncio.sleep(1.5)
            await record_completions(pool, new, "run-new", ("ingestion",))
            await until(lambda: len(titles(webhook, "resolved")) >= 1)
            await asyncio.sleep(1.0)
    assert titles(webhook, "no workbook") == [
        "syno: no workbook for 9.0 days (deadline 7)",
        "syno: resolved: no workbook for 9.0 days (deadline 7)",
    ]


async def test_a_silent_share_watcher_pages_once_and_resolves_when_it_beats_again(
    nats_url: str, isolated_pg_dsn: str, data_dir: Path, webhook: LocalHTTPServer
) -> None:
    """The real ingestion service writes its heartbeat; stopped, its heartbeat ages past the deadline (8 s, more
    than the 5 s between writes); started again, it beats and the alert resolves."""
    activation = create_activation(
        activation_settings(nats_url, isolated_pg_dsn, data_dir, webhook, heartbeat_stale_seconds=8)
    )
    async with create_ingestion(ingestion_settings(nats_url, isolated_pg_dsn, data_dir)):
        await asyncio.sleep(1.0)  # its first heartbeat is written at start
    async with activation:
        await until(lambda: len(titles(webhook, "watcher silent")) >= 1, 30)
        await asyncio.sleep(1.5)
        async with create_ingestion(ingestion_settings(nats_url, isolated_pg_dsn, data_dir)):
            await until(lambda: len(titles(webhook, "resolved")) >= 1, 30)
            await asyncio.sleep(1.0)
    [silent] = titles(webhook, "syno: share watcher silent for ")
    assert titles(webhook, "resolved") == [f"syno: resolved: {silent.removeprefix('syno: ')}"]


async def test_dead_letters_waiting_page_once_with_their_subjects(
    nats_url: str, isolated_pg_dsn: str, data_dir: Path, webhook: LocalHTTPServer
) -> None:
    """A poison workbook.landed is dead-lettered by a stage (its pipeline.failed alerts at once); the deadline is
    the reminder that it still waits in SYNO_DLQ, sent once."""
    activation = create_activation(
        activation_settings(nats_url, isolated_pg_dsn, data_dir, webhook, dead_letter_minutes=0)
    )
    async with stand_in_stage(nats_url, isolated_pg_dsn, data_dir), activation:
        connection = await nats.connect(nats_url)
        try:
            await connection.jetstream().publish(bus.WORKBOOK_LANDED, b"{not json", headers={"Nats-Msg-Id": "poison"})
            await connection.jetstream().publish(
                bus.WORKBOOK_LANDED, landed("3" * 64).model_dump_json().encode(), headers={"Nats-Msg-Id": "fine"}
            )
        finally:
            await connection.close()
        await until(lambda: len(titles(webhook, "dead letter")) >= 1, 60)
        await asyncio.sleep(1.5)
    [reminder] = [request.json for request in webhook.requests if request.json["title"].startswith("syno: 1 dead")]
    assert reminder["title"].startswith("syno: 1 dead letter(s) waiting for ")
    assert "- By subject: workbook.landed: 1" in reminder["message"]


async def test_the_freshness_check_sends_one_note_per_tick(
    nats_url: str, isolated_pg_dsn: str, data_dir: Path, webhook: LocalHTTPServer
) -> None:
    """The scheduled freshness check (what SYNO_ACTIVATION__DEADLINES__CRON fires) says when the last workbook
    landed; a tick checked twice (a second replica) still sends one note."""
    settings = activation_settings(nats_url, isolated_pg_dsn, data_dir, webhook, check_seconds=0)
    app, service = build_service("activation", settings)
    async with app:
        await record_completions(service.pool, "4" * 64, "run-4", ("ingestion", "transform", "forecast", "activation"))
        tick = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
        for _ in range(2):
            await check_deadlines(service, freshness_tick=tick)
    [note] = [request.json for request in webhook.requests]
    assert note["title"] == f"syno: freshness check {datetime.now(UTC):%Y-%m-%d}"
    assert "- Last workbook: **?**, landed " in note["message"]  # the completion above carries no file name
    assert "activated: yes" in note["message"]
    assert "- Open deadline alerts: 0" in note["message"]


async def test_two_replicas_and_a_restart_send_a_late_workbook_alert_once(
    nats_url: str, isolated_pg_dsn: str, data_dir: Path, webhook: LocalHTTPServer
) -> None:
    """Two activation replicas check at the same moment, then a third process (a restart) checks again: the
    occurrence is alerted once."""
    settings = activation_settings(nats_url, isolated_pg_dsn, data_dir, webhook, check_seconds=0, no_workbook_days=7)
    first_app, first = build_service("activation", settings)
    second_app, second = build_service("activation", settings)
    async with first_app, second_app:
        await record_completions(first.pool, "5" * 64, "run-5", ("ingestion", "transform", "forecast", "activation"))
        await first.pool.execute("update ops.stage_completions set completed_at = now() - interval '9 days'")
        await asyncio.gather(check_deadlines(first), check_deadlines(second))
    restarted_app, restarted = build_service("activation", settings)
    async with restarted_app:
        await check_deadlines(restarted)
        opened = await restarted.pool.fetchval("select count(*) from ops.deadline_alerts where resolved_at is null")
    assert titles(webhook, "no workbook") == ["syno: no workbook for 9.0 days (deadline 7)"]
    assert opened == 1
