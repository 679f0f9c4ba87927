"""The activation outbox (ops.activation_outbox): side effects outside our stores, each sent once.

A run summary, a Metabase refresh or a failure alert is not sent where it is decided. It is written as a
'pending' row, keyed by (run_id, reference, channel, kind), in the same transaction as the work it reports
(for a forecast.published: the storylines and the stage completion); `deliverer` then sends pending rows and
marks them 'sent'. A redelivered or replayed event writes the same keys again, which changes nothing: a
'sent' row is never sent again (a 'failed' one is queued again, since a replay is a person asking for it).

A row is sent while its transaction holds the row lock (`select ... for update skip locked`), so two
workers (replicas, the periodic sweep) never send the same row at once, and 'sent' is committed right after
the channel accepted it. The one window left: a crash after the channel accepted the message and before
that commit leaves the row 'pending', and it is sent a second time by the next sweep.

`channel` never holds a secret: apprise URLs are named by scheme and a hash of the URL
(`delivery.channel_id`), Metabase by a hash of its address (`metabase.channel_id`); the deliverer maps the
ids back to the configured URLs when it sends. `payload` holds what is sent (a rendered message, or the
snapshot to refresh), never a URL or a key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import asyncpg

from syno_activation.rendering import Message
from syno_shared.events import DeliveryResult

OutboxKind = Literal["summary", "metabase", "alert"]
OutboxStatus = Literal["pending", "sent", "failed"]

RUN_REFERENCE: Final = ""  # the reference of a run's own deliveries (summary, refresh)


@dataclass(frozen=True, slots=True)
class OutboxKey:
    run_id: str
    reference: str
    channel: str
    kind: OutboxKind

    @property
    def target(self) -> str:
        """The channel's public name for a DeliveryResult: its scheme ('json', 'slack', 'metabase')."""
        return self.channel.partition(":")[0]


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    key: OutboxKey
    snapshot_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored row, as the deliverer sees it."""

    key: OutboxKey
    snapshot_id: str
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    last_error: str | None
    sent_at: datetime | None


def message_entries(
    *,
    run_id: str,
    snapshot_id: str,
    kind: Literal["summary", "alert"],
    message: Message,
    channels: Sequence[str],
    reference: str = RUN_REFERENCE,
) -> list[OutboxEntry]:
    """One entry per channel for a rendered message."""
    payload = {"title": message.title, "body": message.body, "severity": message.severity}
    return [OutboxEntry(OutboxKey(run_id, reference, channel, kind), snapshot_id, payload) for channel in channels]


def metabase_entry(*, run_id: str, snapshot_id: str, channel: str) -> OutboxEntry:
    return OutboxEntry(OutboxKey(run_id, RUN_REFERENCE, channel, "metabase"), snapshot_id, {"snapshot_id": snapshot_id})


def run_entries(
    *, run_id: str, snapshot_id: str, summary: Message, notify_channels: Sequence[str], metabase_channel: str | None
) -> list[OutboxEntry]:
    """A run's deliveries, in the order they are sent: the Metabase refresh (when on), so that the dashboards
    show the snapshot before people read about it, then the summary to every channel."""
    refresh = (
        []
        if metabase_channel is None
        else [metabase_entry(run_id=run_id, snapshot_id=snapshot_id, channel=metabase_channel)]
    )
    summaries = message_entries(
        run_id=run_id, snapshot_id=snapshot_id, kind="summary", message=summary, channels=notify_channels
    )
    return refresh + summaries


def payload_message(payload: dict[str, Any]) -> Message:
    return Message(title=str(payload["title"]), body=str(payload["body"]), severity=payload["severity"])


_KEY_WHERE: Final = "run_id = $1 and reference = $2 and channel = $3 and kind = $4"
_ROW_COLUMNS: Final = (
    "run_id, reference, channel, kind, snapshot_id, payload::text, status, attempts, last_error, sent_at"
)


def _key_args(key: OutboxKey) -> tuple[str, str, str, str]:
    return (key.run_id, key.reference, key.channel, key.kind)


def _row(record: asyncpg.Record) -> OutboxRow:
    return OutboxRow(
        key=OutboxKey(record["run_id"], record["reference"], record["channel"], record["kind"]),
        snapshot_id=record["snapshot_id"],
        payload=json.loads(record["payload"]),
        status=record["status"],
        attempts=record["attempts"],
        last_error=record["last_error"],
        sent_at=record["sent_at"],
    )


async def enqueue(connection: asyncpg.Connection, entries: Sequence[OutboxEntry]) -> None:
    """Write the entries as 'pending', inside the caller's transaction. A key already there keeps its row
    (above all a 'sent' one); a 'failed' one is queued again with the new payload."""
    await connection.executemany(
        "insert into ops.activation_outbox (run_id, reference, channel, kind, snapshot_id, payload)"
        " values ($1, $2, $3, $4, $5, $6::jsonb)"
        " on conflict (run_id, reference, channel, kind) do update set status = 'pending', attempts = 0,"
        " payload = excluded.payload, next_attempt_at = now()"
        " where activation_outbox.status = 'failed'",
        [(*_key_args(entry.key), entry.snapshot_id, json.dumps(entry.payload)) for entry in entries],
    )


async def claim(connection: asyncpg.Connection, key: OutboxKey) -> OutboxRow | None:
    """The row if it is pending, due, and no one else is sending it; locked until the caller's transaction ends."""
    record = await connection.fetchrow(
        f"select {_ROW_COLUMNS} from ops.activation_outbox where {_KEY_WHERE} and status = 'pending'"
        " and next_attempt_at <= now() for update skip locked",
        *_key_args(key),
    )
    return None if record is None else _row(record)


async def mark(
    connection: asyncpg.Connection, key: OutboxKey, result: DeliveryResult, *, is_final: bool, retry_seconds: float
) -> None:
    """Record an attempt: 'sent', 'failed' for good (`is_final`), or still 'pending', retried no sooner than
    `retry_seconds` from now."""
    status: OutboxStatus = "sent" if result.is_ok else "failed" if is_final else "pending"
    await connection.execute(
        f"update ops.activation_outbox set status = $5, attempts = attempts + 1, last_error = $6,"
        f" sent_at = case when $5 = 'sent' then now() end,"
        f" next_attempt_at = now() + make_interval(secs => $7) where {_KEY_WHERE}",
        *_key_args(key),
        status,
        None if result.is_ok else result.detail,
        retry_seconds,
    )


async def fetch(pool: asyncpg.Pool, key: OutboxKey) -> OutboxRow | None:
    record = await pool.fetchrow(
        f"select {_ROW_COLUMNS} from ops.activation_outbox where {_KEY_WHERE}", *_key_args(key)
    )
    return None if record is None else _row(record)


async def due(pool: asyncpg.Pool, *, limit: int) -> list[OutboxKey]:
    """Pending rows whose next attempt is due, oldest first."""
    records = await pool.fetch(
        "select run_id, reference, channel, kind from ops.activation_outbox"
        " where status = 'pending' and next_attempt_at <= now() order by created_at limit $1",
        limit,
    )
    return [OutboxKey(record["run_id"], record["reference"], record["channel"], record["kind"]) for record in records]
