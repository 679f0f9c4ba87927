"""Dead letters: a message no stage could process, kept with why, for an operator to list, redrive or drop.

A stage that gives up on a message (its last delivery failed, or its input was rejected) copies it
to the `SYNO_DLQ` stream under `dlq.<subject>`, with the original body and headers (trace context
included) and headers saying which stage, which stream sequence, how many deliveries, what error.
A message whose worker died on every delivery never reaches that code: JetStream then sends a
MAX_DELIVERIES advisory, which a stream of its own keeps (`SYNO_ADVISORIES`), so a consumer running in
every service dead-letters it even if no service was up when the advisory fired. The dead letter's
Nats-Msg-Id is `dlq:<stream>:<sequence>`, so both paths record one dead letter per message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import nats.js.errors
from faststream.nats import JStream, StorageType
from nats.js import JetStreamContext
from nats.js.api import StreamConfig

DLQ_STREAM: Final = "SYNO_DLQ"
DLQ_SUBJECTS: Final = "dlq.>"
ADVISORY_STREAM: Final = "SYNO_ADVISORIES"
DLQ_MAX_AGE_SECONDS: Final = 90 * 24 * 3600.0  # a quarter to notice, fix and redrive

SUBJECT_HEADER: Final = "Syno-Dlq-Subject"
SEQUENCE_HEADER: Final = "Syno-Dlq-Stream-Seq"
STAGE_HEADER: Final = "Syno-Dlq-Stage"
DELIVERIES_HEADER: Final = "Syno-Dlq-Deliveries"
ERROR_CODE_HEADER: Final = "Syno-Dlq-Error-Code"
ERROR_HEADER: Final = "Syno-Dlq-Error"
DLQ_HEADERS: Final = (SUBJECT_HEADER, SEQUENCE_HEADER, STAGE_HEADER, DELIVERIES_HEADER, ERROR_CODE_HEADER, ERROR_HEADER)


def dlq_stream() -> JStream:
    return JStream(name=DLQ_STREAM, subjects=[DLQ_SUBJECTS], storage=StorageType.FILE, max_age=DLQ_MAX_AGE_SECONDS)


def advisory_subject(stream_name: str) -> str:
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream_name}.*"


def advisory_stream(stream_name: str) -> JStream:
    """Keeps the event stream's max-deliveries advisories, which core NATS would fire once and forget."""
    return JStream(
        name=ADVISORY_STREAM,
        subjects=[advisory_subject(stream_name)],
        storage=StorageType.FILE,
        max_age=DLQ_MAX_AGE_SECONDS,
    )


def stream_configs(stream_name: str) -> list[StreamConfig]:
    """The dead-letter and advisory streams as plain configs, to create them with the event stream."""
    import dataclasses

    return [
        dataclasses.replace(declared.config, subjects=list(declared.subjects))
        for declared in (dlq_stream(), advisory_stream(stream_name))
    ]


def dead_letter_id(stream_name: str, sequence: int) -> str:
    return f"dlq:{stream_name}:{sequence}"


def dead_letter_headers(
    *,
    original_headers: dict[str, str] | None,
    subject: str,
    sequence: int,
    stage: str,
    deliveries: int,
    error_code: str,
    error: str,
    stream_name: str,
) -> dict[str, str]:
    kept = {key: value for key, value in (original_headers or {}).items() if not key.startswith("Nats-")}
    return {
        **kept,
        "Nats-Msg-Id": dead_letter_id(stream_name, sequence),
        SUBJECT_HEADER: subject,
        SEQUENCE_HEADER: str(sequence),
        STAGE_HEADER: stage,
        DELIVERIES_HEADER: str(deliveries),
        ERROR_CODE_HEADER: error_code,
        ERROR_HEADER: error.replace("\n", " ")[:1000],
    }


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter as an operator sees it."""

    id: int
    """Its sequence in the dead-letter stream: what `syno dlq show|redrive|drop` take."""
    subject: str
    stream_sequence: int
    stage: str
    deliveries: int
    error_code: str
    error: str
    snapshot_id: str | None
    trace_id: str | None
    dead_at: datetime | None
    body: bytes
    headers: dict[str, str]

    def as_dict(self, *, with_body: bool = False) -> dict[str, object]:
        summary: dict[str, object] = {
            "id": self.id,
            "subject": self.subject,
            "stream_sequence": self.stream_sequence,
            "stage": self.stage,
            "deliveries": self.deliveries,
            "error_code": self.error_code,
            "error": self.error,
            "snapshot_id": self.snapshot_id,
            "trace_id": self.trace_id,
            "dead_at": self.dead_at.isoformat() if self.dead_at else None,
        }
        if with_body:
            summary["body"] = self.body.decode(errors="replace")
        return summary


def _snapshot_of(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value.get("snapshot_id") if isinstance(value, dict) else None


def _trace_of(headers: dict[str, str]) -> str | None:
    parts = headers.get("traceparent", "").split("-")
    return parts[1] if len(parts) == 4 else None


async def read(js: JetStreamContext, dead_letter_id: int) -> DeadLetter | None:
    try:
        stored = await js.get_msg(DLQ_STREAM, dead_letter_id)
    except nats.js.errors.NotFoundError:
        return None
    headers = dict(stored.headers or {})
    body = stored.data or b""
    return DeadLetter(
        id=dead_letter_id,
        subject=headers.get(SUBJECT_HEADER, (stored.subject or "").removeprefix("dlq.")),
        stream_sequence=int(headers.get(SEQUENCE_HEADER, "0")),
        stage=headers.get(STAGE_HEADER, "?"),
        deliveries=int(headers.get(DELIVERIES_HEADER, "0")),
        error_code=headers.get(ERROR_CODE_HEADER, "?"),
        error=headers.get(ERROR_HEADER, ""),
        snapshot_id=_snapshot_of(body),
        trace_id=_trace_of(headers),
        dead_at=stored.time if hasattr(stored, "time") else None,
        body=body,
        headers=headers,
    )


async def list_all(js: JetStreamContext) -> list[DeadLetter]:
    """Every dead letter still in the stream, oldest first."""
    try:
        info = await js.stream_info(DLQ_STREAM)
    except nats.js.errors.NotFoundError:
        return []
    letters = []
    for sequence in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
        letter = await read(js, sequence)
        if letter is not None:
            letters.append(letter)
    return letters


async def drop(js: JetStreamContext, dead_letter_id: int) -> bool:
    try:
        return bool(await js.delete_msg(DLQ_STREAM, dead_letter_id))
    except nats.js.errors.NotFoundError:
        return False


def redrive_headers(letter: DeadLetter, attempt: str) -> dict[str, str]:
    """The original headers (trace context kept), a new message id, and the replay headers that make it run."""
    from syno_shared import bus

    kept = {
        key: value for key, value in letter.headers.items() if key not in DLQ_HEADERS and not key.startswith("Nats-")
    }
    snapshot = letter.snapshot_id or "unknown"
    return {
        **kept,
        "Nats-Msg-Id": bus.message_id(letter.subject, snapshot, attempt),
        bus.FORCE_HEADER: "1",
        bus.ATTEMPT_HEADER: attempt,
    }
