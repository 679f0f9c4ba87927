"""`syno replay`: publish stored events again, chosen by snapshot, stream sequence or time.

A replay always gets a new attempt id (`Syno-Attempt: replay-<hex>`), which every downstream event's
message id carries, so JetStream never drops it as a duplicate. With `--force` it also carries
`Syno-Force: 1`: every stage redoes work it had completed (replacing rows, never duplicating them) and
transform publishes even a snapshot older than the published one. Without it, a stage that completed
the snapshot only publishes its recorded result again. `--dry-run` says what would be sent and sends
nothing.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import nats
import nats.js.errors
from nats.js import JetStreamContext

from syno_cli import servers
from syno_shared import bus


@dataclass(frozen=True)
class StoredEvent:
    sequence: int
    subject: str
    snapshot_id: str | None
    stored_at: datetime | None
    data: bytes
    headers: dict[str, str]


async def stored_events(js: JetStreamContext, stream_name: str, subject: str) -> list[StoredEvent]:
    """Every stored event of `subject`, oldest first."""
    info = await js.stream_info(stream_name)
    found = []
    for sequence in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
        try:
            stored = await js.get_msg(stream_name, sequence)
        except nats.js.errors.NotFoundError:
            continue
        if stored.subject != subject:
            continue
        try:
            body = json.loads(stored.data or b"{}")
        except ValueError:
            body = {}
        found.append(
            StoredEvent(
                sequence=sequence,
                subject=subject,
                snapshot_id=body.get("snapshot_id") if isinstance(body, dict) else None,
                stored_at=getattr(stored, "time", None),
                data=stored.data or b"",
                headers=dict(stored.headers or {}),
            )
        )
    return found


def select(
    events: list[StoredEvent],
    *,
    snapshot_id: str | None = None,
    sequence: int | None = None,
    since: datetime | None = None,
) -> list[StoredEvent]:
    """The events a replay means: the latest one of a snapshot, the one at a sequence, or all since a time."""
    if sequence is not None:
        return [event for event in events if event.sequence == sequence]
    if snapshot_id is not None:
        matching = [event for event in events if event.snapshot_id == snapshot_id]
        return matching[-1:]
    if since is not None:
        return [event for event in events if event.stored_at is not None and event.stored_at >= since]
    return []


def replay_headers(event: StoredEvent, *, is_forced: bool) -> dict[str, str]:
    """The original headers (trace context kept), a new attempt, and the force flag when asked."""
    attempt = f"replay-{uuid.uuid4().hex[:8]}"
    kept = {
        key: value
        for key, value in event.headers.items()
        if not key.startswith("Nats-") and key not in (bus.FORCE_HEADER, bus.ATTEMPT_HEADER)
    }
    headers = {
        **kept,
        "Nats-Msg-Id": bus.message_id(event.subject, event.snapshot_id or f"seq-{event.sequence}", attempt),
        bus.ATTEMPT_HEADER: attempt,
    }
    if is_forced:
        headers[bus.FORCE_HEADER] = "1"
    return headers


async def replay(
    nats_url: str,
    stream_name: str,
    subject: str,
    *,
    snapshot_id: str | None = None,
    sequence: int | None = None,
    since: datetime | None = None,
    is_forced: bool = False,
    is_dry_run: bool = False,
) -> list[tuple[StoredEvent, dict[str, str]]]:
    """Replay the chosen events; returns what was (or, on a dry run, would be) published."""
    connection = await servers.connect_nats(nats_url)
    try:
        js = connection.jetstream()
        chosen = select(
            await stored_events(js, stream_name, subject), snapshot_id=snapshot_id, sequence=sequence, since=since
        )
        sent = []
        for event in chosen:
            headers = replay_headers(event, is_forced=is_forced)
            if not is_dry_run:
                await js.publish(subject, event.data, stream=stream_name, headers=headers)
            sent.append((event, headers))
        return sent
    finally:
        await connection.close()


async def replay_event(nats_url: str, stream_name: str, subject: str, snapshot_id: str) -> None:
    """A forced replay of a snapshot's latest event (what `syno replay SUBJECT --snapshot ID --force` does)."""
    sent = await replay(nats_url, stream_name, subject, snapshot_id=snapshot_id, is_forced=True)
    if not sent:
        raise LookupError(f"no {subject} event for snapshot {snapshot_id} in stream {stream_name}")
