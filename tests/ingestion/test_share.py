"""The share watcher takes only real workbooks, and only once they stop changing."""

from __future__ import annotations

from pathlib import Path

import pytest

from syno_ingestion.share import (
    FileState,
    StabilityTracker,
    accepted_path,
    inside,
    is_workbook_candidate,
    list_share,
    move,
    quarantine,
    safe_name,
)


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
