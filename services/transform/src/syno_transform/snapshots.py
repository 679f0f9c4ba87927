"""Builds and publication as rules, no I/O: a build's schemas, which snapshot people see, which builds are kept.

Every snapshot is built aside, in schemas named after the build (`b_<12 hex of the snapshot>_<8 hex>_marts`,
...), and the stable names `marts.<mart>` are views pointed at one build at a time: the published one.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from syno_shared.events import Publication

STABLE_SCHEMA: Final = "marts"
"""The schema BI tools read: one view per mart, over the published build."""
LAYERS: Final = ("staging", "intermediate", "marts")
"""The schemas of one build, in dbt's order (dbt_project.yml gives each folder its schema)."""
BUILD_ID = re.compile(r"^b_[0-9a-f]{12}_[0-9a-f]{8}$")
_HEX12 = re.compile(r"^[0-9a-f]{12}")


def new_build_id(snapshot_id: str, token: str | None = None) -> str:
    """`b_<first 12 hex of the snapshot>_<8 hex of this build>`: a rebuilt snapshot gets schemas of its own, so
    building it again never touches the tables its published views read."""
    head = snapshot_id[:12].lower()
    if not _HEX12.match(head):  # not a sha256 (a hand-made id): a stable stand-in of the same shape
        head = hashlib.sha256(snapshot_id.encode()).hexdigest()[:12]
    return f"b_{head}_{(token or uuid.uuid4().hex)[:8]}"


def build_schema(build_id: str, layer: str = "marts") -> str:
    if not BUILD_ID.match(build_id) or layer not in LAYERS:
        raise ValueError(f"not a build schema: build '{build_id}', layer '{layer}'")
    return f"{build_id}_{layer}"


@dataclass(frozen=True)
class SnapshotAge:
    """How recent a snapshot's data is: its latest invoice date, then when its workbook landed."""

    data_freshness: date | None
    landed_at: datetime

    def is_older_than(self, other: SnapshotAge) -> bool:
        return (self.data_freshness or date.min, self.landed_at) < (other.data_freshness or date.min, other.landed_at)


def publication(
    candidate: SnapshotAge, published: SnapshotAge | None, *, is_forced: bool, is_rehearsal: bool = False
) -> Publication:
    """Newest data wins: a snapshot older than the published one is kept aside, unless an operator forced it.
    A rehearsal (`syno smoke`) is never published."""
    if is_rehearsal:
        return "rehearsal"
    if published is None or not candidate.is_older_than(published):
        return "published"
    return "published_forced" if is_forced else "kept_aside_older"


@dataclass(frozen=True)
class KeptBuild:
    """A build whose schemas still exist: when it finished checking (if it passed) and was last published."""

    build_id: str
    passed_at: datetime | None
    last_published_at: datetime | None


def builds_to_drop(builds: Sequence[KeptBuild], *, published: str | None, keep: int) -> list[str]:
    """Every build but the published one, the last `keep` published ones (rollback) and the last `keep` that
    passed (a snapshot kept aside is still read by forecast and activation); failed builds go too."""
    published_last = sorted(
        ((build.last_published_at, build.build_id) for build in builds if build.last_published_at is not None),
        reverse=True,
    )
    passed_last = sorted(
        ((build.passed_at, build.build_id) for build in builds if build.passed_at is not None), reverse=True
    )
    kept = {published} | {build_id for _, build_id in published_last[:keep]} | {b for _, b in passed_last[:keep]}
    return sorted(build.build_id for build in builds if build.build_id not in kept)
