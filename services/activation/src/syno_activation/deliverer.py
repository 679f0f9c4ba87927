"""Sends the outbox's pending rows (see `outbox`) and records each attempt.

Three callers: the stage, right after the transaction that queued its rows; the pipeline.failed handler,
after queueing its alert; and the sweep (`deliver_periodically`), at start-up and then every minute, for rows
left pending by a crash and for failed attempts whose retry is due. Each row is sent under its row lock and
marked in the same transaction (`outbox.claim` / `outbox.mark`), so concurrent callers never send it twice.

A failed attempt stays 'pending' and is retried by the sweep after `retry_seconds`, doubled each time, until
`max_attempts`; then the row is 'failed'. A row whose channel is no longer configured fails at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import asyncpg

from syno_activation import outbox
from syno_activation.delivery import send_message_async
from syno_activation.metabase import MetabaseConfig, channel_id, refresh_dashboards
from syno_activation.outbox import OutboxKey, OutboxKind, OutboxRow
from syno_shared import faults
from syno_shared.events import DeliveryResult
from syno_shared.logging import get_logger

SWEEP_LIMIT: Final = 100
_DATABASE_ERRORS: Final = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


@dataclass(frozen=True, slots=True)
class Channels:
    """Where outbox rows go, from the settings at the time of sending (never from the row)."""

    summary_urls: Mapping[str, str] = field(default_factory=dict, repr=False)
    """apprise URL by channel id (`delivery.channel_id`) for run summaries, in the configured order."""
    alert_urls: Mapping[str, str] = field(default_factory=dict, repr=False)
    """apprise URL by channel id for alerts (pipeline.failed, deadlines), in the configured order."""
    metabase: MetabaseConfig = field(default_factory=lambda: MetabaseConfig(mode="off"))
    max_attempts: int = 5
    retry_seconds: float = 60.0

    @property
    def summary_channels(self) -> list[str]:
        return list(self.summary_urls)

    @property
    def alert_channels(self) -> list[str]:
        return list(self.alert_urls)

    def message_url(self, key: OutboxKey) -> str | None:
        """Where a summary or alert row goes now: its channel among the targets of its kind (None: not there)."""
        return (self.alert_urls if key.kind == "alert" else self.summary_urls).get(key.channel)

    @property
    def metabase_channel(self) -> str | None:
        """The refresh's channel id, None when the refresh is off."""
        return None if self.metabase.mode == "off" else channel_id(self.metabase)

    def retry_delay(self, attempts: int) -> float:
        """Seconds before the next attempt after `attempts` failed ones: retry_seconds, doubled each time."""
        return float(self.retry_seconds * 2 ** max(attempts - 1, 0))


@dataclass(frozen=True, slots=True)
class Delivered:
    """What became of one row: `is_attempt` says whether it was sent (or tried) just now."""

    key: OutboxKey
    result: DeliveryResult
    is_attempt: bool


def queued(key: OutboxKey, why: str = "in the outbox, to be sent") -> DeliveryResult:
    """The result of a row not sent (yet): is_ok is False, the detail starts with 'queued:'."""
    return DeliveryResult(target=key.target, is_ok=False, detail=f"queued: {why}")


def results(delivered: Sequence[Delivered], kind: OutboxKind) -> list[DeliveryResult]:
    return [item.result for item in delivered if item.key.kind == kind]


async def _send(channels: Channels, row: OutboxRow) -> tuple[DeliveryResult, bool]:
    """The attempt's result, and whether a failure is final (the channel is no longer configured)."""
    key = row.key
    if key.kind == "metabase":
        if key.channel != channels.metabase_channel:
            return DeliveryResult(target=key.target, is_ok=False, detail="Metabase refresh no longer configured"), True
        [result] = await refresh_dashboards(channels.metabase, row.snapshot_id)
        return result, False
    url = channels.message_url(key)
    if url is None:
        detail = f"channel {key.channel} is no longer among the {key.kind} targets"
        return DeliveryResult(target=key.target, is_ok=False, detail=detail), True
    [result] = await send_message_async([url], outbox.payload_message(row.payload))
    return result, False


async def deliver_one(pool: asyncpg.Pool, channels: Channels, key: OutboxKey) -> DeliveryResult | None:
    """Send the row if it is pending, due and not being sent elsewhere; None when it was not sent."""
    async with pool.acquire() as connection, connection.transaction():
        row = await outbox.claim(connection, key)
        if row is None:
            return None
        result, is_final = await _send(channels, row)
        faults.at("activation.outbox_sent")  # the one window: sent, not yet marked (a crash here sends it again)
        attempts = row.attempts + 1
        await outbox.mark(
            connection,
            key,
            result,
            is_final=is_final or attempts >= channels.max_attempts,
            retry_seconds=channels.retry_delay(attempts),
        )
    get_logger().info(
        "outbox_delivery", run_id=key.run_id, kind=key.kind, channel=key.channel, is_ok=result.is_ok, attempt=attempts
    )
    return result


def _not_sent_now(key: OutboxKey, row: OutboxRow | None) -> DeliveryResult:
    if row is None:
        return queued(key, "no outbox row")
    if row.status == "sent":
        sent_at = f" at {row.sent_at:%Y-%m-%d %H:%M:%S %Z}".rstrip() if row.sent_at else ""
        return DeliveryResult(target=key.target, is_ok=True, detail=f"already sent{sent_at}")
    if row.status == "failed":
        detail = f"gave up after {row.attempts} attempts: {row.last_error or 'no detail'}"
        return DeliveryResult(target=key.target, is_ok=False, detail=detail)
    last = f"; last attempt: {row.last_error}" if row.last_error else ""
    return queued(key, f"retried by the outbox sweep{last}")


async def deliver(pool: asyncpg.Pool, channels: Channels, keys: Sequence[OutboxKey]) -> list[Delivered]:
    """Send these rows now, in order; for each, what became of it (sent now, already sent, failed, queued).

    A database error on a row leaves it to the sweep (reported 'queued'); it never undoes what was recorded.
    """
    delivered: list[Delivered] = []
    for key in keys:
        try:
            result = await deliver_one(pool, channels, key)
            item = (
                Delivered(key, result, is_attempt=True)
                if result is not None
                else Delivered(key, _not_sent_now(key, await outbox.fetch(pool, key)), is_attempt=False)
            )
        except _DATABASE_ERRORS as error:
            get_logger().warning("outbox_unavailable", run_id=key.run_id, kind=key.kind, error=str(error))
            item = Delivered(key, queued(key, "the outbox could not be updated; the sweep sends it"), False)
        delivered.append(item)
    return delivered


async def deliver_due(pool: asyncpg.Pool, channels: Channels, *, limit: int = SWEEP_LIMIT) -> list[Delivered]:
    """One sweep: every pending row whose attempt is due (oldest first, at most `limit`)."""
    return await deliver(pool, channels, await outbox.due(pool, limit=limit))


async def deliver_periodically(pool: asyncpg.Pool, channels: Callable[[], Channels], *, every: float) -> None:
    """Sweep now, then every `every` seconds, until cancelled. A sweep that fails (database away) is logged and
    tried again at the next tick."""
    while True:
        try:
            swept = await deliver_due(pool, channels())
        except _DATABASE_ERRORS as error:
            get_logger().warning("outbox_sweep_failed", error=str(error))
        else:
            if swept:
                sent = sum(item.result.is_ok for item in swept if item.is_attempt)
                get_logger().info("outbox_swept", rows=len(swept), sent=sent)
        await asyncio.sleep(every)
