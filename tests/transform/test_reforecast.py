"""The scheduled re-forecast (syno_transform.reforecast): a tick re-publishes the published snapshot's recorded
marts.ready as a forced replay with the tick's attempt, once per tick, recorded in ops.schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from stage_app import landed, ready

from syno_shared import bus, db, schedules
from syno_shared.events import MartsReady
from syno_shared.service import build_service
from syno_transform.reforecast import REFORECAST_SCHEDULE, reforecast_action, reforecast_schedule
from syno_transform.settings import TransformOptions, TransformSettings

pytestmark = pytest.mark.integration

PUBLISHED, OLDER = "a" * 64, "b" * 64


async def marts_ready_messages(nats_url: str) -> list[tuple[dict[str, str], dict[str, object]]]:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        info = await js.stream_info("SYNO")
        found = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            message = await js.get_msg("SYNO", sequence)
            if message.subject == bus.MARTS_READY:
                found.append((dict(message.headers or {}), json.loads(message.data or b"{}")))
        return found
    finally:
        await connection.close()


async def test_a_tick_republishes_the_published_snapshots_marts_ready_forced_once(
    nats_url: str, isolated_pg_dsn: str, data_dir: Path
) -> None:
    options = TransformOptions(reforecast_cron="0 6 * * 1", schedule_timezone="Europe/Paris")
    settings = TransformSettings(nats_url=nats_url, pg_dsn=isolated_pg_dsn, data_dir=data_dir, transform=options)
    app, service = build_service("transform", settings)  # the transform's edges, without its dbt
    schedule = reforecast_schedule(options)
    assert schedule is not None and schedule.name == REFORECAST_SCHEDULE
    events: dict[str, MartsReady] = {}
    async with app:
        async with service.pool.acquire() as connection, connection.transaction():
            for snapshot_id, build in ((OLDER, "b_bbbbbbbbbbbb_00000001"), (PUBLISHED, "b_aaaaaaaaaaaa_00000001")):
                event = events[snapshot_id] = ready(landed(snapshot_id, run_id=f"run-{snapshot_id[0]}"))
                await db.record_completion(
                    connection,
                    snapshot_id=snapshot_id,
                    stage="transform",
                    run_id=event.run_id,
                    subject=bus.MARTS_READY,
                    event_json=event.model_dump_json(),
                )
                await connection.execute(
                    "insert into ops.snapshot_builds (build_id, snapshot_id, run_id, status, landed_at, rows_loaded)"
                    " values ($1, $2, $3, 'passed', now(), 1)",
                    build,
                    snapshot_id,
                    event.run_id,
                )
                await connection.execute(
                    "insert into ops.published_snapshot (snapshot_id, run_id, build_id, publication)"
                    " values ($1, $2, $3, 'published')",
                    snapshot_id,
                    event.run_id,
                    build,
                )
        await schedules.register(service.pool, schedule, datetime(2026, 11, 1, tzinfo=UTC))
        monday_tick = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # Monday 06:00 in Paris
        action = reforecast_action(service)
        for now in (monday_tick, datetime(2026, 11, 30, 5, 0, 30, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)):
            await schedules.run_due(service.pool, schedule, action, now)  # three looks, one tick
        shown = await service.pool.fetchrow("select last_tick, last_status, last_detail from ops.schedules")

    [(headers, body)] = await marts_ready_messages(nats_url)
    assert body == json.loads(events[PUBLISHED].model_dump_json())  # the published snapshot's, not the older one's
    assert {key: headers[key] for key in ("Nats-Msg-Id", bus.FORCE_HEADER, bus.ATTEMPT_HEADER)} == {
        "Nats-Msg-Id": f"marts.ready:{PUBLISHED}:schedule-20261130T0500Z",
        bus.FORCE_HEADER: "1",
        bus.ATTEMPT_HEADER: "schedule-20261130T0500Z",
    }
    assert (shown["last_tick"], shown["last_status"]) == (monday_tick, "succeeded")
    assert shown["last_detail"].startswith("marts.ready of aaaaaaaaaaaa re-published as schedule-20261130T0500Z")
