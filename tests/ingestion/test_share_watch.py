"""How the watcher knows a file is fully copied: polling on network mounts, filesystem events and a quiet
window on a local disk, chosen by the share's filesystem or by the setting."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from syno_ingestion.settings import IngestionOptions
from syno_ingestion.share import (
    EventWatch,
    FileState,
    PollingWatch,
    QuietTracker,
    choose_watch_mode,
    list_share,
    mount_filesystem,
    watch_for,
)

MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw 0 0
//nas/sales /mnt/sales cifs rw,vers=3.0 0 0
nas:/export /mnt/nfs nfs4 rw 0 0
sshfs#me@nas: /mnt/sshfs fuse.sshfs rw 0 0
/dev/sdb1 /mnt/sales/local\\040disk ext4 rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "filesystem", "mode"),
    [
        ("/srv/share/raw", "ext4", "events"),
        ("/tmp/x", "tmpfs", "events"),
        ("/mnt/sales/raw", "cifs", "polling"),
        ("/mnt/nfs/raw", "nfs4", "polling"),
        ("/mnt/sshfs/raw", "fuse.sshfs", "polling"),
        ("/mnt/sales/local disk/raw", "ext4", "events"),  # the deepest mount wins; \040 is a space
    ],
)
def test_auto_polls_on_network_and_fuse_mounts_and_listens_for_events_elsewhere(
    path: str, filesystem: str, mode: str
) -> None:
    assert (mount_filesystem(Path(path), MOUNTS), choose_watch_mode("auto", Path(path), MOUNTS)) == (filesystem, mode)


def test_the_setting_overrides_the_filesystem_and_an_unknown_mount_is_polled() -> None:
    assert choose_watch_mode("events", Path("/mnt/sales/raw"), MOUNTS) == "events"
    assert choose_watch_mode("polling", Path("/srv/raw"), MOUNTS) == "polling"
    assert choose_watch_mode("auto", Path("/srv/raw"), "") == "polling"


def test_the_watch_mode_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNO_INGESTION__WATCH_MODE", "polling")
    monkeypatch.setenv("SYNO_INGESTION__QUIET_SECONDS", "0.5")
    from syno_ingestion.settings import IngestionSettings

    options = IngestionSettings().ingestion
    assert (options.watch_mode, options.quiet_seconds) == ("polling", 0.5)
    assert (IngestionOptions().watch_mode, IngestionOptions().quiet_seconds) == ("auto", 0.3)


def test_a_file_is_ready_after_a_quiet_window_without_events_and_is_offered_once() -> None:
    tracker = QuietTracker(quiet_seconds=0.3, reoffer_seconds=4.0)
    path = Path("/share/a.xlsx")
    assert tracker.observe({path: FileState(10, 1)}, now=0.0) == []  # first sight: quiet from now
    assert tracker.observe({path: FileState(20, 2)}, now=0.2) == []  # grew: quiet again from 0.2
    assert tracker.observe({path: FileState(20, 2)}, now=0.4) == []  # 0.2 s quiet only
    assert tracker.observe({path: FileState(20, 2)}, now=0.45, touched=[path]) == []  # an event, same size
    assert tracker.next_due() == pytest.approx(0.75)
    assert tracker.observe({path: FileState(20, 2)}, now=0.75) == [path]  # 0.3 s without event or change
    assert tracker.observe({path: FileState(20, 2)}, now=1.5) == []  # offered once
    tracker.forget([path], now=1.5)  # being retried: offered again reoffer_seconds later
    assert tracker.observe({path: FileState(20, 2)}, now=5.4) == []
    assert tracker.observe({path: FileState(20, 2)}, now=5.5) == [path]


def test_an_empty_file_is_never_ready_in_events_mode_and_a_vanished_file_is_forgotten() -> None:
    tracker = QuietTracker(quiet_seconds=0.3, reoffer_seconds=4.0)
    path = Path("/share/a.xlsx")
    for now in (0.0, 1.0, 2.0):
        assert tracker.observe({path: FileState(0, 1)}, now=now) == []
    assert tracker.observe({}, now=3.0) == []
    assert tracker.next_due() == float("inf")
    assert tracker.observe({path: FileState(0, 1)}, now=4.0) == []
    assert tracker.observe({path: FileState(5, 2)}, now=4.1) == []
    assert tracker.observe({path: FileState(5, 2)}, now=4.4) == [path]


async def test_polling_watch_takes_a_file_after_stable_polls(tmp_path: Path) -> None:
    watch = PollingWatch(poll_seconds=0.01, stable_polls=2)
    (tmp_path / "a.xlsx").write_bytes(b"abc")
    offers = []
    for _ in range(3):
        offers.append(watch.ready(list_share(tmp_path)))
        await watch.wait()
    assert offers == [[], [], [tmp_path / "a.xlsx"]]
    await watch.close()


async def test_events_mode_never_takes_a_file_whose_writer_pauses_less_than_the_quiet_window(tmp_path: Path) -> None:
    """A file written in chunks: while the pauses are shorter than the quiet window (0.1 s < 0.4 s) it is never
    offered; a pause longer than the window (1.2 s) makes it look finished, and it is offered during that pause
    with the bytes written so far (ingestion's checks then see it change and take it again); after the last
    chunk it is offered with its final size within a second. Every offer comes at least a quiet window after
    the write before it, and only a final size/mtime check that matches the last write."""
    quiet = 0.4
    watch = watch_for(tmp_path, "events", poll_seconds=5.0, stable_polls=2, quiet_seconds=quiet)
    assert isinstance(watch, EventWatch)
    path = tmp_path / "growing.xlsx"
    writes: list[tuple[float, int]] = []  # (monotonic time after the write, size)
    offers: list[tuple[float, FileState]] = []

    def write(chunk: bytes) -> None:
        with path.open("ab") as handle:
            handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        writes.append((time.monotonic(), path.stat().st_size))

    async def watcher() -> None:
        while True:
            listing = await asyncio.to_thread(list_share, tmp_path)
            for ready in watch.ready(listing):
                offers.append((time.monotonic(), listing[ready]))
                watch.forget([ready])
            await watch.wait()

    loop = asyncio.create_task(watcher())
    try:
        for _ in range(80):  # short pauses until the watch, in place a moment after it starts, hears a write
            write(b"x" * 100)
            await asyncio.sleep(0.05)
            if watch.batches_heard:
                break
        assert watch.batches_heard
        for _ in range(10):  # short pauses
            await asyncio.sleep(0.1)
            write(b"x" * 100)
        short_phase_end, paused_size = time.monotonic(), writes[-1][1]
        await asyncio.sleep(1.2)  # a long pause: looks finished
        for _ in range(5):
            write(b"y" * 100)
            await asyncio.sleep(0.1)
        last_write = writes[-1][0]
        final = FileState(path.stat().st_size, path.stat().st_mtime_ns)
        for _ in range(100):
            if offers and offers[-1][1] == final:
                break
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        await watch.close()

    assert not [at for at, _ in offers if at < short_phase_end]  # never during the short pauses
    assert [state.size for _, state in offers] == [paused_size, final.size]  # in the long pause, and finished
    assert offers[-1][1] == final and offers[-1][0] - last_write < 1.0  # sub-second reaction
    for at, state in offers:
        last_before = max(written for written, _ in writes if written <= at)
        assert at - last_before >= quiet
        assert state.size == max(size for written, size in writes if written <= at)


async def test_events_mode_survives_a_name_the_event_library_cannot_decode(tmp_path: Path) -> None:
    """watchfiles fails on a name that is not UTF-8: the watch is set up again, every file waits a full quiet
    window again (events may have been missed), and files keep being offered."""
    watch = watch_for(tmp_path, "events", poll_seconds=5.0, stable_polls=2, quiet_seconds=0.3)
    assert isinstance(watch, EventWatch)
    offers: list[str] = []

    async def watcher() -> None:
        while True:
            listing = await asyncio.to_thread(list_share, tmp_path)
            offers.extend(path.name for path in watch.ready(listing))
            await watch.wait()

    loop = asyncio.create_task(watcher())
    try:
        bad = tmp_path / os.fsdecode(b"ventes-\xff\xfe.xlsx")
        for _ in range(100):  # until the watch, in place a moment after it starts, trips over the name
            with bad.open("ab") as handle:
                handle.write(b"x")
            await asyncio.sleep(0.05)
            if watch.restarts:
                break
        assert watch.restarts
        (tmp_path / "good.xlsx").write_bytes(b"abc")
        for _ in range(100):
            if "good.xlsx" in offers:
                break
            await asyncio.sleep(0.05)
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop
        await watch.close()
    assert "good.xlsx" in offers


async def test_an_event_names_the_file_as_the_listing_does_when_the_share_is_given_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SYNO_DATA_DIR may be relative (the default is 'data'): the listing then names files relative to the working
    folder, watchfiles absolutely; an event must still reset the quiet window of the file it names."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw").mkdir()
    watch = watch_for(Path("raw"), "events", poll_seconds=5.0, stable_polls=2, quiet_seconds=0.3)
    assert isinstance(watch, EventWatch)
    try:
        for _ in range(100):  # until the watch is in place and hears a write
            (tmp_path / "raw" / "a.xlsx").write_bytes(b"abc")
            await asyncio.sleep(0.05)
            if watch.batches_heard:
                break
        await asyncio.sleep(0.2)  # the last batch is in
        assert watch._touched == {Path("raw") / "a.xlsx"}
    finally:
        await watch.close()
