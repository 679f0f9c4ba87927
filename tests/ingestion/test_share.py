"""The share watcher takes only real workbooks, and only once they stop changing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from syno_ingestion.share import (
    FileChanged,
    FileState,
    StabilityTracker,
    accepted_path,
    display_name,
    entry_state,
    inside,
    is_workbook_candidate,
    judged_file,
    list_share,
    move,
    quarantine,
    refuse_entry,
    safe_name,
    sweep_work,
    take,
)
from syno_shared.errors import InputRejected
from syno_shared.fingerprint import file_sha256


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sellout.xlsx", True),
        ("Sell Out 2024 (final).XLSX", True),
        ("données ventes.xlsm", True),
        ("export.xlsb", True),
        ("legacy.xls", True),
        ("libre.ods", True),
        ("~$sellout.xlsx", False),  # Office lock file
        (".~lock.sellout.xlsx#", False),  # LibreOffice lock
        ("._sellout.xlsx", False),  # macOS resource fork
        (".hidden.xlsx", False),
        ("sellout.xlsx.part", False),
        ("sellout.tmp", False),
        ("notes.csv", False),
        ("report.pdf", False),
        ("@eaDir/sellout.xlsx", False),  # Synology thumbnails
        ("#recycle/sellout.xlsx", False),  # Synology recycle bin
        ("2024/sellout.xlsx", True),
    ],
)
def test_candidates(name: str, expected: bool) -> None:
    assert is_workbook_candidate(Path(name)) is expected


def test_list_share_skips_system_folders(tmp_path: Path) -> None:
    (tmp_path / "@eaDir").mkdir()
    (tmp_path / "@eaDir" / "a.xlsx").write_bytes(b"x")
    (tmp_path / "#recycle").mkdir()
    (tmp_path / "#recycle" / "b.xlsx").write_bytes(b"x")
    (tmp_path / "~$c.xlsx").write_bytes(b"x")
    (tmp_path / "d.xlsx").write_bytes(b"xyz")
    assert {p.name: s.size for p, s in list_share(tmp_path).items()} == {"d.xlsx": 3}


def test_file_is_ready_after_n_unchanged_polls() -> None:
    tracker = StabilityTracker(stable_polls=2)
    path = Path("/share/a.xlsx")
    assert tracker.observe({path: FileState(10, 1)}) == []  # first sight
    assert tracker.observe({path: FileState(20, 2)}) == []  # still growing
    assert tracker.observe({path: FileState(20, 2)}) == []  # stable once
    assert tracker.observe({path: FileState(20, 2)}) == [path]  # stable twice: take it
    assert tracker.observe({path: FileState(20, 2)}) == []  # taken only once


def test_an_empty_file_is_never_ready_and_a_vanished_file_is_forgotten() -> None:
    tracker = StabilityTracker(stable_polls=1)
    path = Path("/share/a.xlsx")
    for _ in range(3):
        assert tracker.observe({path: FileState(0, 1)}) == []
    tracker.observe({})
    assert tracker.observe({path: FileState(5, 1)}) == []
    assert tracker.observe({path: FileState(5, 1)}) == [path]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.xlsx", "___etc_passwd.xlsx"),
        ("a/b.xlsx", "a_b.xlsx"),
        ("sales \"Q4\" '24'.xlsx", "sales _Q4_ _24_.xlsx"),
        ("ventes été.xlsx", "ventes été.xlsx"),
        ("..", "workbook"),
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    assert safe_name(name) == expected


def test_nothing_is_written_outside_the_data_dir(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="refusing"):
        inside(tmp_path / "data", tmp_path / "data" / ".." / "elsewhere")


def test_quarantine_keeps_the_file_and_says_why(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    source = data / "raw" / "bad 'file'.xlsx"
    source.write_bytes(b"not a workbook")
    target = quarantine(data, source, code="corrupt_file", message="export it again", details={"size_bytes": 14})
    assert not source.exists()
    assert target.parent == (data / "quarantine").resolve()
    assert target.read_bytes() == b"not a workbook"
    reason = target.with_name(target.name + ".reason.json").read_text()
    assert '"code": "corrupt_file"' in reason and "export it again" in reason and "bad 'file'.xlsx" in reason


def test_accepted_file_moves_beside_its_sheets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    source = data / "raw" / "s.xlsx"
    source.write_bytes(b"x")
    target = move(source, accepted_path(data, source.name, "abc"))
    assert target == (data / "processed" / "ingestion" / "abc" / "source-s.xlsx").resolve()
    assert target.read_bytes() == b"x" and not source.exists()


def test_long_names_are_cut_to_150_bytes_keeping_the_suffix() -> None:
    name = safe_name("売上報告" * 20 + ".xlsx")
    assert name.endswith(".xlsx") and len(name.encode()) <= 150 and name.startswith("売上報告")


def test_a_name_that_is_not_utf8_or_hides_its_order_is_shown_plainly() -> None:
    assert display_name(os.fsdecode(b"ventes-\xff-2024.xlsx")) == "ventes-\ufffd-2024.xlsx"
    assert display_name("report\u202exslx.exe\n.xlsx") == "report?xslx.exe .xlsx"


def test_links_and_pipes_are_listed_as_what_they_are_and_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.xlsx"
    outside.write_bytes(b"secret" * 100)
    share = tmp_path / "share"
    share.mkdir()
    (share / "link.xlsx").symlink_to(outside)
    os.mkfifo(share / "pipe.xlsx")
    (share / "dir.xlsx").mkdir()
    kinds = {path.name: state.kind for path, state in list_share(share).items()}
    assert kinds == {"link.xlsx": "link", "pipe.xlsx": "other"}


def test_an_empty_pipe_is_ready_like_any_entry_so_it_can_be_refused() -> None:
    tracker = StabilityTracker(stable_polls=1)
    pipe = Path("/share/pipe.xlsx")
    tracker.observe({pipe: FileState(0, 1, "other")})
    assert tracker.observe({pipe: FileState(0, 1, "other")}) == [pipe]


def stable(path: Path) -> FileState:
    return entry_state(path.lstat())


def test_taking_a_file_copies_it_and_hashes_what_it_copied(tmp_path: Path) -> None:
    source = tmp_path / "a.xlsx"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    work = tmp_path / "work"
    work.mkdir()
    taken = take(source, work, stable(source), max_bytes=10 * 1024 * 1024)
    assert taken.snapshot_id == file_sha256(source)
    assert taken.copy.read_bytes() == source.read_bytes() and taken.copy.parent == work


def test_links_pipes_and_oversized_files_are_refused_without_being_read(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    secret = tmp_path / "secret.xlsx"
    secret.write_bytes(b"x" * 10)
    link = tmp_path / "link.xlsx"
    link.symlink_to(secret)
    pipe = tmp_path / "pipe.xlsx"
    os.mkfifo(pipe)  # opening it for reading would block until a writer came
    big = tmp_path / "big.xlsx"
    with big.open("wb") as handle:
        handle.truncate(2048)
    refusals = {}
    for entry in (link, pipe, big):
        with pytest.raises(InputRejected) as caught:
            take(entry, work, stable(entry), max_bytes=1024)
        refusals[entry.name] = (caught.value.code, caught.value.message)
    assert refusals["link.xlsx"] == (
        "not_a_file",
        f"'link.xlsx' is a link to '{secret}', not a file; links on the share are never followed. "
        "Copy the workbook itself onto the share",
    )
    assert refusals["pipe.xlsx"][0] == "not_a_file" and "a pipe, socket or device" in refusals["pipe.xlsx"][1]
    assert refusals["big.xlsx"] == (
        "too_large",
        "'big.xlsx' is 2.0 KiB; at most 1.0 KiB are accepted. Split it, or delete unused sheets and rows",
    )
    assert list(work.iterdir()) == []


def test_a_file_that_changed_since_it_was_seen_stable_is_not_taken(tmp_path: Path) -> None:
    source = tmp_path / "a.xlsx"
    source.write_bytes(b"first")
    seen = stable(source)
    time.sleep(0.01)
    source.write_bytes(b"first, then more")
    with pytest.raises(FileChanged):
        take(source, tmp_path, seen, max_bytes=1024)


def test_the_judged_bytes_are_kept_the_original_while_unchanged_else_the_copy(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    source = tmp_path / "a.xlsx"
    source.write_bytes(b"v1")
    taken = take(source, work, stable(source), max_bytes=1024)
    assert judged_file(source, taken) == source and not taken.copy.exists()

    taken = take(source, work, stable(source), max_bytes=1024)
    time.sleep(0.01)
    source.write_bytes(b"v2, written meanwhile")
    kept = judged_file(source, taken)
    assert (kept, kept.read_bytes(), source.read_bytes()) == (taken.copy, b"v1", b"v2, written meanwhile")


def test_a_refused_link_leaves_its_reason_and_nothing_of_its_target(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    target = tmp_path / "elsewhere.xlsx"
    target.write_bytes(b"not ours")
    link = data / "raw" / "link.xlsx"
    link.symlink_to(target)
    reason = refuse_entry(data, link, code="not_a_file", message="a link", details={"size_bytes": 0})
    assert not os.path.lexists(link) and target.read_bytes() == b"not ours"
    assert json.loads(reason.read_text())["code"] == "not_a_file"
    assert [path.name for path in (data / "quarantine").iterdir()] == [reason.name]


def test_work_folders_left_by_a_dead_process_are_swept(tmp_path: Path) -> None:
    old = tmp_path / "processed" / "ingestion" / ".incoming" / "old-run"
    new = old.with_name("new-run")
    old.mkdir(parents=True)
    new.mkdir()
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert sweep_work(tmp_path, older_than_seconds=600) == [old]
    assert [path.name for path in new.parent.iterdir()] == ["new-run"]
