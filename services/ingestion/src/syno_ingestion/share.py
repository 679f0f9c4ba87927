"""The watched share (SYNO_DATA_DIR/raw): what counts as a workbook, when it is fully copied,
and where files go afterwards. Works on SMB/NFS mounts: it polls, it never relies on inotify.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syno_shared.contract import WORKBOOK_SUFFIXES

# Synology's thumbnail and recycle-bin folders, and other housekeeping folders.
IGNORED_FOLDERS = frozenset({"@eadir", "#recycle", "#snapshot", "@tmp", "$recycle.bin"})
_TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".swp")


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int


def is_workbook_candidate(relative: Path) -> bool:
    """True for a workbook a person dropped; False for lock, temp, hidden and system files."""
    if any(part.casefold() in IGNORED_FOLDERS or part.startswith(".") for part in relative.parts[:-1]):
        return False
    name = relative.name
    if name.startswith(("~$", ".~lock.", "._", ".", "~")) or name.casefold().endswith(_TEMPORARY_SUFFIXES):
        return False
    return relative.suffix.casefold() in WORKBOOK_SUFFIXES


def list_share(root: Path) -> dict[Path, FileState]:
    """Candidate workbooks under root with their size and mtime (one listing = one poll)."""
    found: dict[Path, FileState] = {}
    for directory, folders, files in os.walk(root):
        folders[:] = [f for f in folders if f.casefold() not in IGNORED_FOLDERS and not f.startswith(".")]
        for name in files:
            path = Path(directory) / name
            if not is_workbook_candidate(path.relative_to(root)):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:  # removed between listing and stat
                continue
            if path.is_file():
                found[path] = FileState(stat.st_size, stat.st_mtime_ns)
    return found


@dataclass
class StabilityTracker:
    """A file is ready once its size and mtime are unchanged across `stable_polls` polls."""

    stable_polls: int
    _seen: dict[Path, tuple[FileState, int]] = field(default_factory=dict)

    def observe(self, listing: Mapping[Path, FileState]) -> list[Path]:
        ready: list[Path] = []
        for path, state in listing.items():
            previous = self._seen.get(path)
            count = previous[1] + 1 if previous is not None and previous[0] == state else 0
            self._seen[path] = (state, count)
            if count == self.stable_polls and state.size > 0:
                ready.append(path)
        for gone in set(self._seen) - set(listing):
            del self._seen[gone]
        return sorted(ready)

    def forget(self, paths: Iterable[Path]) -> None:
        for path in paths:
            self._seen.pop(path, None)


def safe_name(name: str) -> str:
    """A file name that cannot climb out of its folder or trip a shell: no separators, no '..'."""
    cleaned = re.sub(r"[^\w.\- ()]+", "_", name, flags=re.UNICODE).strip(" .")
    cleaned = cleaned.replace("..", "_")
    return cleaned[:180] or "workbook"


def inside(root: Path, path: Path) -> Path:
    """`path` resolved, refusing anything outside `root` (nothing is written outside SYNO_DATA_DIR)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ValueError(f"refusing to write outside {root}: {path}")
    return resolved


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def quarantine(data_dir: Path, source: Path, *, code: str, message: str, details: Mapping[str, Any]) -> Path:
    """Move the file to quarantine/ beside `<name>.reason.json`; returns the new path."""
    folder = inside(data_dir, data_dir / "quarantine")
    folder.mkdir(parents=True, exist_ok=True)
    target = inside(data_dir, folder / f"{_stamp()}-{safe_name(source.name)}")
    shutil.move(source, target)
    reason = {
        "file_name": source.name,
        "code": code,
        "message": message,
        "quarantined_at": datetime.now(UTC).isoformat(),
        **details,
    }
    target.with_name(target.name + ".reason.json").write_text(json.dumps(reason, indent=2, ensure_ascii=False))
    return target


def accepted_path(data_dir: Path, source: Path, snapshot_id: str) -> Path:
    """Where an accepted file is kept: beside its parquet sheets, processed/ingestion/<snapshot_id>/."""
    folder = inside(data_dir, data_dir / "processed" / "ingestion" / snapshot_id)
    return inside(data_dir, folder / f"source-{safe_name(source.name)}")


def move(source: Path, target: Path) -> Path:
    """Move a file off the share into its folder (created as needed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)
    return target


def keep_duplicate(data_dir: Path, source: Path, snapshot_id: str) -> Path:
    """A repeat of an accepted snapshot is kept (nothing is lost) but never processed again."""
    folder = inside(data_dir, data_dir / "processed" / "ingestion" / snapshot_id / "duplicates")
    folder.mkdir(parents=True, exist_ok=True)
    target = inside(data_dir, folder / f"{_stamp()}-{safe_name(source.name)}")
    shutil.move(source, target)
    return target
