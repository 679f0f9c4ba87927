"""Operator controls every replica obeys: `syno pause ingestion` / `syno resume ingestion`.

The state lives in a NATS key-value bucket (`SYNO_CONTROL`, one key per component), not in a process, so a
pause reaches every replica and outlives restarts. Only the operator writes it (the CLI, which also creates the
bucket on the first pause); ingestion may only read its own key (syno_shared.access), so a missing bucket
simply means "never paused".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType

CONTROL_BUCKET: Final = "SYNO_CONTROL"
PAUSABLE: Final = ("ingestion",)


def bucket_stream(bucket: str = CONTROL_BUCKET) -> str:
    """The stream JetStream keeps a key-value bucket in."""
    return f"KV_{bucket}"


def key_subject(component: str, bucket: str = CONTROL_BUCKET) -> str:
    """The subject a key's values are stored under (what a direct get asks for)."""
    return f"$KV.{bucket}.{component}"


@dataclass(frozen=True)
class PauseState:
    """Whether a component is paused, why, by whom and since when (None: never paused)."""

    is_paused: bool = False
    reason: str = ""
    changed_by: str = ""
    changed_at: datetime | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "is_paused": self.is_paused,
                "reason": self.reason,
                "changed_by": self.changed_by,
                "changed_at": self.changed_at.isoformat() if self.changed_at else None,
            }
        ).encode()

    @classmethod
    def from_json(cls, value: bytes | None) -> PauseState:
        """A stored value; anything unreadable counts as paused (someone wrote the key on purpose)."""
        try:
            data = json.loads(value or b"")
            changed_at = data.get("changed_at")
            return cls(
                is_paused=bool(data["is_paused"]),
                reason=str(data.get("reason") or ""),
                changed_by=str(data.get("changed_by") or ""),
                changed_at=datetime.fromisoformat(changed_at) if changed_at else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(is_paused=True, reason="unreadable control value: written by hand?")

    def as_dict(self) -> dict[str, object]:
        return {
            "is_paused": self.is_paused,
            "reason": self.reason,
            "changed_by": self.changed_by,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
        }


async def read_pause(js: JetStreamContext, component: str) -> PauseState:
    """The component's pause state; not paused when the bucket or the key does not exist."""
    try:
        bucket = await js.key_value(CONTROL_BUCKET)
        entry = await bucket.get(component)
    except (nats.js.errors.BucketNotFoundError, nats.js.errors.KeyNotFoundError, nats.js.errors.NotFoundError):
        return PauseState()
    return PauseState.from_json(entry.value)


async def write_pause(
    js: JetStreamContext, component: str, *, is_paused: bool, reason: str = "", changed_by: str = ""
) -> PauseState:
    """Set the component's pause state (the operator's: creates the bucket when missing)."""
    if component not in PAUSABLE:
        raise ValueError(f"{component!r} cannot be paused; pausable: {', '.join(PAUSABLE)}")
    try:
        bucket = await js.key_value(CONTROL_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        bucket = await js.create_key_value(
            KeyValueConfig(bucket=CONTROL_BUCKET, history=10, storage=StorageType.FILE, direct=True)
        )
    state = PauseState(is_paused=is_paused, reason=reason, changed_by=changed_by, changed_at=datetime.now(UTC))
    await bucket.put(component, state.to_json())
    return state
