"""Schedules as well as events: cron-style triggers a service runs itself (croniter), e.g. a weekly re-forecast
(transform) or a daily freshness check (activation).

A schedule is registered in `ops.schedules` when its service starts (cron, time zone, next tick); each tick that
fires is a row of `ops.schedule_runs` keyed by (schedule, tick), inserted before the action runs: of two
replicas racing for a tick, one inserts it and runs the action, the other finds the key taken and does nothing.
Only the latest tick due is fired (a service down for three ticks runs one on its return, not three), never one
from before the schedule was registered or its cron last changed (a new schedule waits for its first tick). A
tick is fired at most once: a process that dies mid-action leaves the tick 'running', and the next tick runs.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import asyncpg
from croniter import croniter

from syno_shared.logging import get_logger

CHECK_EVERY_SECONDS: Final = 30.0
_DATABASE_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

Action = Callable[[datetime], Awaitable[str]]
"""What a tick does, given the tick; returns a one-line detail for ops.schedules."""


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    """e.g. 'transform.reforecast': the service, then what it does."""
    service: str
    cron: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise ValueError(f"schedule {self.name}: {self.cron!r} is not a cron expression (e.g. '0 6 * * 1')")
        ZoneInfo(self.timezone)  # an unknown zone raises here, at start-up


def latest_tick(schedule: Schedule, now: datetime) -> datetime:
    """The latest tick at or before `now` (UTC)."""
    local = now.astimezone(ZoneInfo(schedule.timezone)) + timedelta(microseconds=1)
    tick: datetime = croniter(schedule.cron, local).get_prev(datetime)
    return tick.astimezone(UTC)


def next_tick(schedule: Schedule, now: datetime) -> datetime:
    """The first tick after `now` (UTC)."""
    tick: datetime = croniter(schedule.cron, now.astimezone(ZoneInfo(schedule.timezone))).get_next(datetime)
    return tick.astimezone(UTC)


def due_tick(
    schedule: Schedule, now: datetime, *, registered_at: datetime, last_tick: datetime | None
) -> datetime | None:
    """The tick to fire now, if any: the latest one, when it is after the registration and the last fired tick."""
    tick = latest_tick(schedule, now)
    if tick <= registered_at or (last_tick is not None and tick <= last_tick):
        return None
    return tick


def instance_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def register(pool: asyncpg.Pool, schedule: Schedule, now: datetime) -> None:
    """Record the schedule (a changed cron or zone counts from now: its past ticks are not fired)."""
    await pool.execute(
        "insert into ops.schedules (schedule, service, cron, timezone, registered_at, next_tick)"
        " values ($1, $2, $3, $4, $5, $6)"
        " on conflict (schedule) do update set service = excluded.service, next_tick = excluded.next_tick,"
        " cron = excluded.cron, timezone = excluded.timezone,"
        " registered_at = case when (schedules.cron, schedules.timezone) = (excluded.cron, excluded.timezone)"
        " then schedules.registered_at else excluded.registered_at end",
        schedule.name,
        schedule.service,
        schedule.cron,
        schedule.timezone,
        now,
        next_tick(schedule, now),
    )


async def run_due(pool: asyncpg.Pool, schedule: Schedule, action: Action, now: datetime) -> datetime | None:
    """Fire the schedule's due tick if no one has (the (schedule, tick) key decides); the tick fired, or None."""
    record = await pool.fetchrow(
        "select registered_at, last_tick from ops.schedules where schedule = $1", schedule.name
    )
    if record is None:
        await register(pool, schedule, now)
        return None
    tick = due_tick(schedule, now, registered_at=record["registered_at"], last_tick=record["last_tick"])
    if tick is None:
        return None
    claimed = await pool.fetchval(
        "insert into ops.schedule_runs (schedule, tick, instance, status) values ($1, $2, $3, 'running')"
        " on conflict (schedule, tick) do nothing returning tick",
        schedule.name,
        tick,
        instance_name(),
    )
    if claimed is None:
        return None  # another replica fired it
    await pool.execute(
        "update ops.schedules set last_tick = greatest(last_tick, $2), next_tick = $3 where schedule = $1",
        schedule.name,
        tick,
        next_tick(schedule, now),
    )
    log = get_logger().bind(schedule=schedule.name, tick=tick.isoformat())
    try:
        detail, status = await action(tick), "succeeded"
        log.info("schedule_fired", detail=detail)
    except asyncio.CancelledError:
        raise
    except Exception as error:  # recorded on the tick and in ops.schedules; the next tick runs again
        detail, status = f"{type(error).__name__}: {error}", "failed"
        log.error("schedule_failed", error=detail, exc_info=True)
    await pool.execute(
        "update ops.schedule_runs set status = $3, detail = $4, finished_at = now() where schedule = $1 and tick = $2",
        schedule.name,
        tick,
        status,
        detail[:1000],
    )
    await pool.execute(
        "update ops.schedules set last_status = $3, last_detail = $4, last_finished_at = now()"
        " where schedule = $1 and last_tick = $2",
        schedule.name,
        tick,
        status,
        detail[:1000],
    )
    return tick


def utc_now() -> datetime:
    return datetime.now(UTC)


async def run_forever(
    pool: asyncpg.Pool,
    schedule: Schedule,
    action: Action,
    *,
    every: float = CHECK_EVERY_SECONDS,
    clock: Callable[[], datetime] = utc_now,
) -> None:
    """Register the schedule, then look for its due tick every `every` seconds until cancelled. A database away
    is logged and tried again at the next look."""
    registered = False
    while True:
        try:
            if not registered:
                await register(pool, schedule, clock())
                registered = True
                get_logger().info("schedule_registered", schedule=schedule.name, cron=schedule.cron)
            await run_due(pool, schedule, action, clock())
        except _DATABASE_ERRORS as error:
            get_logger().warning("schedule_unavailable", schedule=schedule.name, error=str(error))
        await asyncio.sleep(every)
