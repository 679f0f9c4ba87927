"""Schedules (syno_shared.schedules): which tick is due, and that two replicas racing for a tick fire it once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from syno_shared import migrate, schedules
from syno_shared.schedules import Schedule, due_tick, latest_tick, next_tick

WEEKLY = Schedule("transform.reforecast", "transform", "0 6 * * 1", "Europe/Paris")  # Mondays 06:00 Paris
MONDAY_0500_UTC = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # 06:00 in Paris (winter time)


def test_ticks_follow_the_cron_in_its_time_zone() -> None:
    assert latest_tick(WEEKLY, MONDAY_0500_UTC) == MONDAY_0500_UTC  # a tick at `now` is due now
    assert latest_tick(WEEKLY, MONDAY_0500_UTC - timedelta(seconds=1)) == MONDAY_0500_UTC - timedelta(days=7)
    assert next_tick(WEEKLY, MONDAY_0500_UTC) == MONDAY_0500_UTC + timedelta(days=7)


def test_only_the_latest_tick_after_the_registration_and_the_last_run_is_due() -> None:
    wednesday = MONDAY_0500_UTC + timedelta(days=2)
    registered = MONDAY_0500_UTC - timedelta(days=30)
    assert due_tick(WEEKLY, wednesday, registered_at=registered, last_tick=None) == MONDAY_0500_UTC
    assert due_tick(WEEKLY, wednesday, registered_at=registered, last_tick=MONDAY_0500_UTC) is None
    # Registered on Tuesday: Monday's tick is not fired (a new schedule waits for its first tick).
    assert due_tick(WEEKLY, wednesday, registered_at=MONDAY_0500_UTC + timedelta(days=1), last_tick=None) is None
    # Down for three weeks: one tick on return, the latest.
    three_weeks = wednesday + timedelta(days=21)
    assert due_tick(WEEKLY, three_weeks, registered_at=registered, last_tick=MONDAY_0500_UTC) == (
        MONDAY_0500_UTC + timedelta(days=21)
    )


def test_a_bad_cron_or_zone_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not a cron expression"):
        Schedule("x.y", "activation", "every monday")
    with pytest.raises(Exception, match="Mars/Olympus"):
        Schedule("x.y", "activation", "0 6 * * 1", "Mars/Olympus")


@pytest.mark.integration
async def test_two_loops_racing_fire_each_tick_once(isolated_pg_dsn: str) -> None:
    """Two replicas (two pools, as two processes would have) look for the due tick at the same moments, tick after
    tick: the action runs once per tick, and ops.schedules shows the last and next tick."""
    await asyncio.to_thread(migrate.apply_migrations, isolated_pg_dsn, migrate.installed_sources(["ops"]))
    every_minute = Schedule("activation.freshness", "activation", "* * * * *")
    fired: list[tuple[str, datetime]] = []

    def action(replica: str) -> schedules.Action:
        async def run(tick: datetime) -> str:
            fired.append((replica, tick))
            await asyncio.sleep(0.05)  # the other replica looks while this one is at work
            return f"ran by {replica}"

        return run

    start = datetime(2026, 12, 2, 9, 0, 30, tzinfo=UTC)
    pools = [await asyncpg.create_pool(isolated_pg_dsn, min_size=1, max_size=2) for _ in range(2)]
    try:
        await schedules.register(pools[0], every_minute, start)
        for minute in range(1, 6):
            now = start + timedelta(minutes=minute)
            for _ in range(3):  # several looks within the same minute
                await asyncio.gather(
                    *(
                        schedules.run_due(pool, every_minute, action(f"replica-{index}"), now)
                        for index, pool in enumerate(pools)
                    )
                )
        rows = await pools[0].fetch("select tick, status, detail from ops.schedule_runs order by tick")
        shown = await pools[0].fetchrow("select last_tick, next_tick, last_status from ops.schedules")
    finally:
        for pool in pools:
            await pool.close()
    ticks = [start.replace(second=0) + timedelta(minutes=minute) for minute in range(1, 6)]
    assert sorted(tick for _, tick in fired) == ticks  # once per tick, whichever replica won it
    assert [(row["tick"], row["status"]) for row in rows] == [(tick, "succeeded") for tick in ticks]
    assert dict(shown) == {
        "last_tick": ticks[-1],
        "next_tick": ticks[-1] + timedelta(minutes=1),
        "last_status": "succeeded",
    }
