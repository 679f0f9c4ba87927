"""The watched share (SYNO_DATA_DIR/raw): what counts as a workbook, when it is fully copied,
and where files go afterwards.

Two ways to tell that a file is fully copied (`watch_for`, SYNO_INGESTION__WATCH_MODE):
- polling (SMB/NFS/FUSE mounts, whose writers are other machines: inotify never hears them): the
  share is listed every `poll_seconds` and a file is taken once its size and mtime are unchanged
  across `stable_polls` listings;
- events (a local disk): filesystem events (watchfiles: inotify, FSEvents...) wake the watcher, and a
  file is taken once no write event touched it for `quiet_seconds` and its size and mtime are the
  ones seen when it was last touched (the final check). The share is still listed at least every
  `poll_seconds`, so a missed event only delays a file, and retries keep their polling cadence.
`auto` picks polling for network and FUSE filesystems (/proc/mounts) and events elsewhere.

Nothing on the share is trusted: an entry is listed without following links, a file is taken by
copying it (never more than the size limit) into a work folder of its own while hashing it, so the
bytes fingerprinted are the bytes read, and nothing is written outside SYNO_DATA_DIR.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from syno_ingestion.preflight import human_bytes
from syno_ingestion.validation import printable
from syno_shared.contract import WORKBOOK_SUFFIXES
from syno_shared.errors import InputRejected, TransientError
from syno_shared.logging import get_logger

# Synology's thumbnail and recycle-bin folders, and other housekeeping folders.
IGNORED_FOLDERS = frozenset({"@eadir", "#recycle", "#snapshot", "@tmp", "$recycle.bin"})
_TEMPORARY_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".download", ".swp")
_CHUNK = 1 << 20
_NAME_BYTES = 150  # leaves room for a timestamp and '.reason.json' under the 255-byte limit of a file name
WORK_FOLDER = Path("processed") / "ingestion" / ".incoming"

EntryKind = Literal["file", "link", "other"]
WatchMode = Literal["auto", "events", "polling"]
# Filesystems whose files may be written by another machine: no local event tells of those writes.
NETWORK_FILESYSTEMS = frozenset({"cifs", "smb", "smb2", "smb3", "smbfs", "nfs", "nfs4", "ncpfs", "afs", "9p", "ceph"})


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int
    kind: EntryKind = "file"


class FileChanged(TransientError):
    """The file changed while it was being taken or read: someone is still writing it. Not a failure:
    it is taken again once it stops changing."""

    code = "file_changed"


@dataclass(frozen=True)
class Taken:
    """A file taken from the share: a private copy, its sha256 (the snapshot id) and the state it had."""

    copy: Path
    snapshot_id: str
    state: FileState


def is_workbook_candidate(relative: Path) -> bool:
    """True for a workbook a person dropped; False for lock, temp, hidden and system files."""
    if any(part.casefold() in IGNORED_FOLDERS or part.startswith(".") for part in relative.parts[:-1]):
        return False
    name = relative.name
    if name.startswith(("~$", ".~lock.", "._", ".", "~")) or name.casefold().endswith(_TEMPORARY_SUFFIXES):
        return False
    return relative.suffix.casefold() in WORKBOOK_SUFFIXES


def entry_state(status: os.stat_result) -> FileState:
    kind: EntryKind = "file" if stat.S_ISREG(status.st_mode) else "link" if stat.S_ISLNK(status.st_mode) else "other"
    return FileState(status.st_size, status.st_mtime_ns, kind)


def list_share(root: Path) -> dict[Path, FileState]:
    """Candidate workbooks under root with their size and mtime (one listing = one poll).

    Links are listed as links (never followed) and pipes, sockets and devices as 'other': they are
    refused when taken, not read. Linked folders are not entered."""
    found: dict[Path, FileState] = {}
    for directory, folders, files in os.walk(root):
        folders[:] = [f for f in folders if f.casefold() not in IGNORED_FOLDERS and not f.startswith(".")]
        for name in files:
            path = Path(directory) / name
            if not is_workbook_candidate(path.relative_to(root)):
                continue
            try:
                found[path] = entry_state(path.lstat())
            except OSError:  # removed between listing and stat, or not ours to see
                continue
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
            if count == self.stable_polls and (state.size > 0 or state.kind != "file"):
                ready.append(path)
        for gone in set(self._seen) - set(listing):
            del self._seen[gone]
        return sorted(ready)

    def forget(self, paths: Iterable[Path]) -> None:
        for path in paths:
            self._seen.pop(path, None)


@dataclass
class QuietTracker:
    """Events mode: a file is ready once nothing touched it for `quiet_seconds` and its size and mtime are
    still the ones it had when it was last touched. A file offered and forgotten (being retried, given up)
    is offered again `reoffer_seconds` later if it stays on the share unchanged."""

    quiet_seconds: float
    reoffer_seconds: float
    _seen: dict[Path, tuple[FileState, float]] = field(default_factory=dict)  # state, when it may be offered

    def observe(self, listing: Mapping[Path, FileState], now: float, touched: Iterable[Path] = ()) -> list[Path]:
        """Files ready at `now`; `touched`: paths a filesystem event named since the last call."""
        touched = set(touched)
        ready: list[Path] = []
        for path, state in listing.items():
            previous = self._seen.get(path)
            if previous is None or previous[0] != state or path in touched:
                self._seen[path] = (state, now + self.quiet_seconds)
            elif now >= previous[1] and (state.size > 0 or state.kind != "file"):
                self._seen[path] = (state, float("inf"))  # offered once, until forgotten or changed
                ready.append(path)
        for gone in set(self._seen) - set(listing):
            del self._seen[gone]
        return sorted(ready)

    def forget(self, paths: Iterable[Path], now: float) -> None:
        for path in paths:
            if path in self._seen:
                self._seen[path] = (self._seen[path][0], now + self.reoffer_seconds)

    def next_due(self) -> float:
        """The earliest time a file may become ready (inf when none is waiting)."""
        return min((due for _, due in self._seen.values()), default=float("inf"))


def mount_filesystem(path: Path, mounts: str | None = None) -> str | None:
    """The filesystem type of the mount holding `path`, from /proc/mounts (None where that is unknown)."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    resolved, best, kind = path.resolve(), -1, None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[1]))
        if resolved.is_relative_to(point) and len(point.parts) > best:
            best, kind = len(point.parts), fields[2]
    return kind


def choose_watch_mode(setting: WatchMode, root: Path, mounts: str | None = None) -> Literal["events", "polling"]:
    """`auto`: polling on network and FUSE filesystems (and where the mount is unknown), events elsewhere."""
    if setting != "auto":
        return setting
    kind = mount_filesystem(root, mounts)
    if kind is None or kind in NETWORK_FILESYSTEMS or kind.startswith("fuse"):
        return "polling"
    return "events"


class ShareWatch(Protocol):
    """What the watcher loop needs: which listed files are ready, forgetting an offered one, and a pause
    until the share should be listed again."""

    mode: Literal["events", "polling"]

    def ready(self, listing: Mapping[Path, FileState]) -> list[Path]: ...

    def forget(self, paths: Iterable[Path]) -> None: ...

    async def wait(self) -> None: ...

    async def close(self) -> None: ...


@dataclass
class PollingWatch:
    """List the share every `poll_seconds`; a file is ready after `stable_polls` unchanged listings."""

    poll_seconds: float
    stable_polls: int
    mode: Literal["events", "polling"] = "polling"
    tracker: StabilityTracker = field(init=False)

    def __post_init__(self) -> None:
        self.tracker = StabilityTracker(stable_polls=self.stable_polls)

    def ready(self, listing: Mapping[Path, FileState]) -> list[Path]:
        return self.tracker.observe(listing)

    def forget(self, paths: Iterable[Path]) -> None:
        self.tracker.forget(paths)

    async def wait(self) -> None:
        await asyncio.sleep(self.poll_seconds)

    async def close(self) -> None:
        return None


@dataclass
class EventWatch:
    """Filesystem events wake the watcher (watchfiles, batched for `step_ms`); a file is ready after a quiet
    window without events (QuietTracker). Between events the share is listed when a file's quiet window ends,
    and at least every `poll_seconds` (a missed event only delays a file)."""

    root: Path
    quiet_seconds: float
    poll_seconds: float
    reoffer_seconds: float
    step_ms: int = 50
    mode: Literal["events", "polling"] = "events"
    tracker: QuietTracker = field(init=False)
    _touched: set[Path] = field(default_factory=set)
    batches_heard: int = 0
    restarts: int = 0
    _missed: bool = False
    _woken: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.tracker = QuietTracker(self.quiet_seconds, self.reoffer_seconds)

    def start(self) -> None:
        """Start listening. The watch is in place a few milliseconds later; a file written before that is found
        by the listings (at least every `poll_seconds`), and any write to it after that is heard."""
        self._task = asyncio.create_task(self._listen(), name="share-events")

    async def _listen(self) -> None:
        """Hear the share until cancelled. The watch can fail (watchfiles refuses an event for a name that is not
        UTF-8, which anyone can drop on the share): it is set up again, and since events may have been missed
        meanwhile, every file on the share waits a full quiet window again."""
        from watchfiles import awatch  # only the events mode needs it

        while True:
            try:
                async for changes in awatch(
                    self.root,
                    watch_filter=None,
                    debounce=max(self.step_ms * 4, 200),
                    step=self.step_ms,
                    ignore_permission_denied=True,
                ):
                    self.batches_heard += 1
                    self._touched.update(self._as_listed(Path(name)) for _, name in changes)
                    self._woken.set()
            except* (RuntimeError, OSError) as errors:  # watchfiles' own error is a RuntimeError, in a task group's
                self.restarts += 1
                self._missed = True
                self._woken.set()
                error = str(errors.exceptions[0])[:300]
                get_logger().warning("share_events_restarted", error=error, restarts=self.restarts)
            await asyncio.sleep(min(0.1 * self.restarts, self.poll_seconds))

    def _as_listed(self, heard: Path) -> Path:
        """An event's (absolute, resolved) path as the share's listing names it (under `root` as given)."""
        resolved = self.root.resolve()
        return self.root / heard.relative_to(resolved) if heard.is_relative_to(resolved) else heard

    def ready(self, listing: Mapping[Path, FileState]) -> list[Path]:
        touched, self._touched = self._touched, set()
        if self._missed:
            self._missed, touched = False, set(listing)
        return self.tracker.observe(listing, time.monotonic(), touched)

    def forget(self, paths: Iterable[Path]) -> None:
        self.tracker.forget(paths, time.monotonic())

    async def wait(self) -> None:
        if self._task is not None and self._task.done():
            self._task.result()  # the listener died: say why rather than go quiet
        timeout = min(max(self.tracker.next_due() - time.monotonic(), 0.0), self.poll_seconds)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), timeout)
        self._woken.clear()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def watch_for(
    root: Path, mode: WatchMode, *, poll_seconds: float, stable_polls: int, quiet_seconds: float
) -> ShareWatch:
    """The share's watch in the mode chosen for it (started: events are heard from now on)."""
    chosen = choose_watch_mode(mode, root)
    if chosen == "polling":
        return PollingWatch(poll_seconds, stable_polls)
    watch = EventWatch(root, quiet_seconds, poll_seconds, reoffer_seconds=poll_seconds * stable_polls)
    watch.start()
    return watch


def display_name(name: str) -> str:
    """A file's name as a person reads it, for messages and events: bytes that are not UTF-8 become
    '\ufffd', control and direction-override characters '?'. The real name stays on the file."""
    return printable(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), limit=255)


def safe_name(name: str) -> str:
    """A file name that cannot climb out of its folder or trip a shell: no separators, no '..', at most
    150 bytes (the suffix kept)."""
    cleaned = re.sub(r"[^\w.\- ()]+", "_", name, flags=re.UNICODE).strip(" .")
    cleaned = cleaned.replace("..", "_") or "workbook"
    if len(cleaned.encode()) <= _NAME_BYTES:
        return cleaned
    stem, dot, suffix = cleaned.rpartition(".")
    suffix = f".{suffix}" if dot and 0 < len(suffix.encode()) <= 10 else ""
    stem = stem if suffix else cleaned
    return stem.encode()[: _NAME_BYTES - len(suffix.encode())].decode("utf-8", "ignore").rstrip(" .") + suffix


def inside(root: Path, path: Path) -> Path:
    """`path` resolved, refusing anything outside `root` (nothing is written outside SYNO_DATA_DIR)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ValueError(f"refusing to write outside {root}: {path}")
    return resolved


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _reason(target: Path, *, file_name: str, code: str, message: str, details: Mapping[str, Any]) -> Path:
    reason = {
        "file_name": file_name,
        "code": code,
        "message": message,
        "quarantined_at": datetime.now(UTC).isoformat(),
        **details,
    }
    path = target.with_name(target.name + ".reason.json")
    path.write_text(json.dumps(reason, indent=2, ensure_ascii=False))
    return path


def quarantine(
    data_dir: Path,
    source: Path,
    *,
    code: str,
    message: str,
    details: Mapping[str, Any],
    file_name: str | None = None,
) -> Path:
    """Move the file to quarantine/ beside `<name>.reason.json`; returns the new path.

    `file_name` is the name the person gave it on the share, when `source` is the copy that was judged."""
    name = file_name if file_name is not None else display_name(source.name)
    folder = inside(data_dir, data_dir / "quarantine")
    folder.mkdir(parents=True, exist_ok=True)
    target = inside(data_dir, folder / f"{_stamp()}-{safe_name(name)}")
    shutil.move(source, target)
    _reason(target, file_name=name, code=code, message=message, details=details)
    return target


def refuse_entry(data_dir: Path, entry: Path, *, code: str, message: str, details: Mapping[str, Any]) -> Path:
    """A link, pipe or device on the share: never opened or followed. What it was is written to
    quarantine/<name>.reason.json and the entry leaves the share (it holds no data of its own)."""
    name = display_name(entry.name)
    folder = inside(data_dir, data_dir / "quarantine")
    folder.mkdir(parents=True, exist_ok=True)
    target = inside(data_dir, folder / f"{_stamp()}-{safe_name(name)}")
    reason = _reason(target, file_name=name, code=code, message=message, details=details)
    entry.unlink(missing_ok=True)
    return reason


def describe_entry(path: Path, state: FileState) -> InputRejected:
    """Why a link, pipe or device on the share is not read, in words a person understands."""
    name = display_name(path.name)
    if state.kind == "link":
        try:
            target = display_name(str(path.readlink()))
        except OSError:
            target = "?"
        return InputRejected(
            f"'{name}' is a link to '{target}', not a file; links on the share are never followed. "
            "Copy the workbook itself onto the share",
            code="not_a_file",
        )
    return InputRejected(
        f"'{name}' is not a file (a pipe, socket or device); copy the workbook itself onto the share",
        code="not_a_file",
    )


def too_large(path: Path, size: int, max_bytes: int) -> InputRejected:
    return InputRejected(
        f"'{display_name(path.name)}' is {human_bytes(size)}; at most {human_bytes(max_bytes)} are accepted. "
        "Split it, or delete unused sheets and rows",
        code="too_large",
    )


def work_folder(data_dir: Path, run_id: str) -> Path:
    """A folder of its own for one run: the copy taken from the share and the sheets read from it."""
    folder = inside(data_dir, data_dir / WORK_FOLDER / run_id)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sweep_work(data_dir: Path, older_than_seconds: float) -> list[Path]:
    """Remove work folders a dead process left behind; returns what was removed."""
    root = data_dir / WORK_FOLDER
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than_seconds
    stale = [folder for folder in root.iterdir() if folder.lstat().st_mtime < cutoff]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


def take(path: Path, folder: Path, seen: FileState, max_bytes: int) -> Taken:
    """Copy a stable file off the share into `folder` while hashing it.

    Never follows a link and never opens anything but a regular file (InputRejected says what it
    is); stops after `max_bytes` (InputRejected 'too_large'); FileChanged if the file is not the
    one that was seen stable, or changes while it is copied."""
    status = path.lstat()
    state = entry_state(status)
    if state.kind != "file":
        raise describe_entry(path, state)
    if state.size > max_bytes:
        raise too_large(path, state.size, max_bytes)
    if state != seen:
        raise FileChanged(f"'{display_name(path.name)}' changed since it was seen stable")
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    digest = hashlib.sha256()
    copy = folder / f"taken-{safe_name(display_name(path.name))}"
    with os.fdopen(descriptor, "rb") as source, copy.open("wb") as target:
        opened = entry_state(os.fstat(source.fileno()))
        if opened != state:  # swapped for another entry between lstat and open
            raise FileChanged(f"'{display_name(path.name)}' changed while it was being taken")
        copied = 0
        while chunk := source.read(_CHUNK):
            copied += len(chunk)
            if copied > max_bytes:
                raise too_large(path, copied, max_bytes)
            digest.update(chunk)
            target.write(chunk)
        if entry_state(os.fstat(source.fileno())) != state or copied != state.size:
            raise FileChanged(f"'{display_name(path.name)}' changed while it was being copied")
    return Taken(copy, digest.hexdigest(), state)


def ensure_unchanged(path: Path, taken: Taken) -> None:
    """Before an outcome is recorded: the file on the share must still be the one that was judged."""
    try:
        current = entry_state(path.lstat())
    except FileNotFoundError:
        return  # gone from the share: what was judged is the copy, which is kept
    if current != taken.state:
        raise FileChanged(
            f"'{display_name(path.name)}' changed while it was being read; it is taken again once it stops changing"
        )


def judged_file(path: Path, taken: Taken) -> Path:
    """The file to keep once a verdict is reached: the original itself while it still holds the judged
    bytes (the copy is dropped; a writer that still has it open writes on into the kept file, not into a
    deleted one), else the copy, and the new version stays on the share to be taken in its turn."""
    try:
        if entry_state(path.lstat()) == taken.state:
            taken.copy.unlink(missing_ok=True)
            return path
    except FileNotFoundError:
        pass
    return taken.copy


def accepted_path(data_dir: Path, file_name: str, snapshot_id: str) -> Path:
    """Where an accepted file is kept: beside its parquet sheets, processed/ingestion/<snapshot_id>/."""
    folder = inside(data_dir, data_dir / "processed" / "ingestion" / snapshot_id)
    return inside(data_dir, folder / f"source-{safe_name(file_name)}")


def move(source: Path, target: Path) -> Path:
    """Move a file into its folder (created as needed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)
    return target


def keep_duplicate(data_dir: Path, source: Path, snapshot_id: str, file_name: str) -> Path:
    """A repeat of an accepted snapshot is kept (nothing is lost) but never processed again."""
    folder = inside(data_dir, data_dir / "processed" / "ingestion" / snapshot_id / "duplicates")
    folder.mkdir(parents=True, exist_ok=True)
    target = inside(data_dir, folder / f"{_stamp()}-{safe_name(file_name)}")
    shutil.move(source, target)
    return target
