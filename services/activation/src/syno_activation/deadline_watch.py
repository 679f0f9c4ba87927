"""The deadline checks as they run in the activation service, which owns the notification channels.

Every `check_seconds` (and on the optional freshness cron, a schedule of syno_shared.schedules) one check
reads the facts (the ops trail, the watcher's heartbeat, the dead-letter stream's state), lets
`deadlines.evaluate` and `deadlines.plan` decide, and in one transaction opens the new occurrences in
ops.deadline_alerts and queues their alerts in the outbox (kind 'alert', keyed by deadline and occurrence),
resolves the cleared ones and queues their 'resolved' notes; the outbox then sends them. A transaction-scoped
advisory lock makes replicas check one at a time, and the occurrence key (and the outbox key) makes a restart
or a second replica find the alert already sent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
import nats.errors
from nats.aio.client import Client as NatsClient

from syno_activation.deadlines import (
    DeadLetters,
    DeadlineOptions,
    Facts,
    Heartbeat,
    LandedWorkbook,
    OpenAlert,
    StageRun,
    evaluate,
    freshness_message,
    plan,
    resolved_message,
)
from syno_activation.deliverer import Channels, Delivered, deliver
from syno_activation.outbox import OutboxEntry, enqueue, message_entries
from syno_activation.settings import ActivationService
from syno_shared import bus, deadletter
from syno_shared.logging import get_logger
from syno_shared.schedules import Schedule

_LOCK_KEY: Final = 0x5359_4E44  # "SYND": one deadline check at a time across replicas
_DATABASE_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
FRESHNESS_SCHEDULE: Final = "activation.freshness"

LANDED = """
with landed as (
    select snapshot_id, run_id, completed_at, coalesce(output_event->>'file_name', '?') as file_name
    from ops.stage_completions
    where stage = 'ingestion' and (completed_at >= $1 or snapshot_id = any($2::text[]))
)
select l.snapshot_id, l.run_id, l.completed_at as landed_at, l.file_name,
       coalesce((select jsonb_object_agg(c.stage, c.completed_at) from ops.stage_completions c
                 where c.snapshot_id = l.snapshot_id and c.stage <> 'ingestion'), '{}'::jsonb)::text as completed,
       coalesce((select jsonb_object_agg(r.stage, jsonb_build_object(
                     'status', r.status, 'started_at', r.started_at, 'delivery', r.delivery,
                     'error', case when r.error_code is not null then r.error_code || ': ' || r.error_message end))
                 from (select distinct on (stage) * from ops.stage_runs
                       where snapshot_id = l.snapshot_id and stage <> 'ingestion'
                       order by stage, started_at desc) r), '{}'::jsonb)::text as latest_runs
from landed l
"""
LAST_LANDED = """
select snapshot_id, run_id, completed_at as landed_at, coalesce(output_event->>'file_name', '?') as file_name,
       exists (select from ops.stage_completions a where a.snapshot_id = c.snapshot_id and a.stage = 'activation')
           as is_activated
from ops.stage_completions c
where stage = 'ingestion' and not starts_with(coalesce(output_event->>'file_name', ''), $1)  -- not `syno smoke`'s
order by completed_at desc limit 1
"""


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)


def _nats_time(value: str) -> datetime:
    """A NATS timestamp (RFC 3339, nanoseconds, 'Z') as a datetime (microseconds)."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
    if match is None:
        raise ValueError(f"not a timestamp: {value!r}")
    whole, fraction, zone = match.groups()
    return _moment(whole + (fraction or "")[:7] + ("+00:00" if zone == "Z" else zone))


def _landed(record: asyncpg.Record) -> LandedWorkbook:
    runs: dict[str, Any] = json.loads(record["latest_runs"])
    return LandedWorkbook(
        snapshot_id=record["snapshot_id"],
        run_id=record["run_id"],
        file_name=record["file_name"],
        landed_at=record["landed_at"],
        completed={stage: _moment(at) for stage, at in json.loads(record["completed"]).items()},
        latest_runs={
            stage: StageRun(run["status"], _moment(run["started_at"]), run["delivery"], run["error"])
            for stage, run in runs.items()
        },
    )


async def read_dead_letters(connection: NatsClient) -> DeadLetters | None:
    """The dead-letter stream's state (count, oldest sequence and time, count by subject), asked the way its
    NATS user may: a stream info request (no dead letter is read). None when NATS cannot answer now."""
    request = json.dumps({"subjects_filter": deadletter.DLQ_SUBJECTS}).encode()
    try:
        reply = await connection.request(f"$JS.API.STREAM.INFO.{deadletter.DLQ_STREAM}", request, timeout=5.0)
        state = json.loads(reply.data)["state"]
    except (nats.errors.Error, TimeoutError, OSError, KeyError, ValueError) as error:
        get_logger().warning("dead_letters_unreadable", error=str(error))
        return None
    count = int(state.get("messages", 0))
    first_at = state.get("first_ts")
    return DeadLetters(
        count=count,
        first_sequence=int(state.get("first_seq", 0)),
        first_at=_nats_time(first_at) if count and first_at else None,
        by_subject=dict(state.get("subjects") or {}),
    )


async def read_facts(
    connection: asyncpg.Connection, options: DeadlineOptions, now: datetime, open_alerts: list[OpenAlert]
) -> Facts:
    open_snapshots = [alert.occurrence for alert in open_alerts if alert.deadline == "workbook_not_activated"]
    since = now - timedelta(hours=options.lookback_hours)
    landed = [_landed(record) for record in await connection.fetch(LANDED, since, open_snapshots)]
    last = await connection.fetchrow(LAST_LANDED, bus.REHEARSAL_FILE_PREFIX)
    beats = await connection.fetch("select component, instance, beat_at from ops.heartbeats")
    return Facts(
        landed=landed,
        last_landed=None
        if last is None
        else LandedWorkbook(
            snapshot_id=last["snapshot_id"],
            run_id=last["run_id"],
            file_name=last["file_name"],
            landed_at=last["landed_at"],
            completed={"activation": last["landed_at"]} if last["is_activated"] else {},
        ),
        heartbeats=[Heartbeat(beat["component"], beat["instance"], beat["beat_at"]) for beat in beats],
    )


async def _open_alerts(connection: asyncpg.Connection) -> list[OpenAlert]:
    records = await connection.fetch(
        "select deadline, occurrence, title, snapshot_id from ops.deadline_alerts where resolved_at is null"
    )
    return [OpenAlert(r["deadline"], r["occurrence"], r["title"], r["snapshot_id"]) for r in records]


def _run_id(deadline: str) -> str:
    return f"deadline:{deadline}"


async def check_deadlines(
    service: ActivationService,
    now: datetime | None = None,
    *,
    freshness_tick: datetime | None = None,
    watching_since: datetime | None = None,
) -> list[Delivered]:
    """One check: open, resolve, queue, then send. With `freshness_tick`, also the scheduled freshness note;
    `watching_since`: when the checking loop started (see `Facts.watching_since`)."""
    activation = service.settings.activation
    options: DeadlineOptions = activation.deadlines
    channels: Channels = activation.channels()
    now = now or datetime.now(UTC)
    dead_letters = await read_dead_letters(service.broker.connection)
    entries: list[OutboxEntry] = []
    async with service.pool.acquire() as connection, connection.transaction():
        await connection.execute("select pg_advisory_xact_lock($1)", _LOCK_KEY)
        open_alerts = await _open_alerts(connection)
        facts = await read_facts(connection, options, now, open_alerts)
        facts = dataclasses.replace(facts, dead_letters=dead_letters, watching_since=watching_since)
        decided = plan(evaluate(facts, now, options), open_alerts)
        for late in decided.to_open:
            opened = await connection.fetchval(
                "insert into ops.deadline_alerts (deadline, occurrence, snapshot_id, stage, title, detail, opened_at)"
                " values ($1, $2, $3, $4, $5, $6, $7) on conflict (deadline, occurrence) do nothing returning 1",
                late.deadline,
                late.occurrence,
                late.snapshot_id,
                late.stage,
                late.message.title,
                late.message.body,
                now,
            )
            if opened:
                entries += message_entries(
                    run_id=_run_id(late.deadline),
                    snapshot_id=late.snapshot_id or "",
                    kind="alert",
                    message=late.message,
                    channels=channels.alert_channels,
                    reference=late.occurrence,
                )
        for alert in decided.to_resolve:
            await connection.execute(
                "update ops.deadline_alerts set resolved_at = $3 where deadline = $1 and occurrence = $2",
                alert.deadline,
                alert.occurrence,
                now,
            )
            if options.send_resolved:
                entries += message_entries(
                    run_id=_run_id(alert.deadline),
                    snapshot_id=alert.snapshot_id or "",
                    kind="alert",
                    message=resolved_message(alert, now),
                    channels=channels.alert_channels,
                    reference=f"{alert.occurrence}:resolved",
                )
        if freshness_tick is not None:
            still_open = await _open_alerts(connection)
            entries += message_entries(
                run_id=FRESHNESS_SCHEDULE,
                snapshot_id=facts.last_landed.snapshot_id if facts.last_landed else "",
                kind="alert",
                message=freshness_message(facts, still_open, now),
                channels=channels.alert_channels,
                reference=freshness_tick.isoformat(),
            )
        await enqueue(connection, entries)
    if decided.to_open or decided.to_resolve:
        get_logger().warning(
            "deadlines_checked",
            opened=[f"{late.deadline}:{late.occurrence}" for late in decided.to_open],
            resolved=[f"{alert.deadline}:{alert.occurrence}" for alert in decided.to_resolve],
        )
    return await deliver(service.pool, channels, [entry.key for entry in entries])


async def check_periodically(
    service: ActivationService, *, every: float, clock: Callable[[], datetime] | None = None
) -> None:
    """Check now, then every `every` seconds, until cancelled; a database away is logged and tried again."""
    started = clock() if clock else datetime.now(UTC)
    while True:
        try:
            await check_deadlines(service, clock() if clock else None, watching_since=started)
        except _DATABASE_ERRORS as error:
            get_logger().warning("deadline_check_failed", error=str(error))
        await asyncio.sleep(every)


def freshness_schedule(options: DeadlineOptions) -> Schedule | None:
    return None if options.cron is None else Schedule(FRESHNESS_SCHEDULE, "activation", options.cron, options.timezone)


def freshness_action(service: ActivationService) -> Callable[[datetime], Any]:
    async def run(tick: datetime) -> str:
        delivered = await check_deadlines(service, freshness_tick=tick)
        return f"freshness note queued, {sum(item.result.is_ok for item in delivered)} delivery(ies) sent"

    return run
