"""What a file is and what reading it would cost, decided from its first bytes and its zip's records."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from syno_ingestion.limits import ReaderLimits
from syno_ingestion.preflight import (
    Dimension,
    Entry,
    check_archive,
    check_sheet,
    column_letters,
    column_number,
    detect_format,
    is_encrypted_package,
    parse_dimension,
    sheet_parts,
    zip_format,
)
from syno_ingestion.reader import ChildEnd, crash, crash_error, sheets_from
from syno_ingestion.validation import contract_sheets, listed, printable
from syno_shared.errors import InputRejected, SynoError, TransientError

LIMITS = ReaderLimits()
MiB = 1 << 20
OOM = "reader_out_of_memory"


@pytest.mark.parametrize(("letters", "number"), [("A", 1), ("Z", 26), ("AA", 27), ("AZ", 52), ("XFD", 16_384)])
def test_column_letters_and_numbers_are_inverse(letters: str, number: int) -> None:
    assert column_number(letters) == number
    assert column_letters(number) == letters


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b'<worksheet><dimension ref="A1:H120"/><sheetData>', Dimension(1, 1, 120, 8)),
        (b'<x:worksheet><x:dimension ref="A1:XFD1048576"/>', Dimension(1, 1, 1_048_576, 16_384)),
        (b"<worksheet><dimension ref='$B$3:$D$9'/>", Dimension(3, 2, 9, 4)),
        (b'<worksheet><dimension ref="C5"/>', Dimension(5, 3, 5, 3)),
        (b'<worksheet><dimension ref="H120:A1"/>', Dimension(1, 1, 120, 8)),
        (b"<worksheet><sheetData>", None),
    ],
)
def test_the_declared_dimension_is_read_from_the_first_bytes(head: bytes, expected: Dimension | None) -> None:
    assert parse_dimension(head) == expected


def test_a_sales_sheet_may_not_declare_more_columns_or_cells_than_the_reader_may_hold() -> None:
    check_sheet("2024", Dimension(1, 1, 1_048_576, 16), LIMITS)  # a full-height 16-column sheet is fine
    with pytest.raises(InputRejected, match=r"declares the range A1:XFD1048576, 16,384 columns") as wide:
        check_sheet("2024", Dimension(1, 1, 1_048_576, 16_384), LIMITS)
    assert wide.value.code == "too_many_columns"
    with pytest.raises(InputRejected, match=r"1,048,576 rows by 500 columns = 524,288,000 cells") as big:
        check_sheet("2024", Dimension(1, 1, 1_048_576, 500), LIMITS)
    assert big.value.code == "sheet_too_large"


def test_the_archive_checks_name_what_is_wrong() -> None:
    workbook = [Entry("xl/workbook.xml", 600, 300), Entry("xl/worksheets/sheet1.xml", 300 * MiB, 30 * MiB)]
    check_archive(workbook, LIMITS)
    cases = [
        ([Entry(f"f{i}", 1, 1) for i in range(10_001)], "too_many_entries", "holds 10,001 files"),
        ([Entry("xl/worksheets/sheet1.xml", 2048 * MiB, 200 * MiB)], "inflates_too_much", "2.0 GiB once unpacked"),
        ([Entry("xl/worksheets/sheet1.xml", 64 * MiB, 160 * 1024)], "inflates_too_much", "(410 times;"),
        ([Entry(f"xl/worksheets/sheet{i}.xml", 10, 5) for i in range(101)], "too_many_sheets", "has 101 sheets"),
    ]
    for entries, code, words in cases:
        with pytest.raises(InputRejected) as caught:
            check_archive(entries, LIMITS)
        assert (caught.value.code, words in caught.value.message) == (code, True), caught.value.message


def test_small_entries_may_compress_as_well_as_they_like() -> None:
    check_archive([Entry("xl/styles.xml", 512 * 1024, 512)], LIMITS)


def test_sheet_names_are_mapped_to_their_parts_through_the_relationships() -> None:
    workbook = (
        b'<workbook><sheets><sheet name="2024" sheetId="1" r:id="rId1"/>'
        b"<sheet name='R&amp;D &lt;notes&gt;' sheetId='2' r:id='rId2'/><sheet name=\"2023-C2\" r:id=\"rId9\"/>"
        b"</sheets></workbook>"
    )
    rels = (
        b'<Relationships><Relationship Id="rId1" Type="t" Target="worksheets/sheet1.xml"/>'
        b'<Relationship Id="rId2" Target="/xl/worksheets/other.xml" Type="t"/>'
        b'<Relationship Id="rId3" Type="t" Target="../customXml/item1.xml"/></Relationships>'
    )
    assert sheet_parts(workbook, rels) == {"2024": "xl/worksheets/sheet1.xml", "R&D <notes>": "xl/worksheets/other.xml"}


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (b"PI;InvDate;Customer\r\nPI1;2024-01-02;ACME\r\n", "csv_not_workbook"),
        ("Kunde\tLand\nMüller\tDeutschland\n".encode("latin-1"), "csv_not_workbook"),
        (b"  <html><table><tr><td>1</td></tr></table></html>", "not_a_workbook"),
        (b'<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet">', "not_a_workbook"),
        (bytes(range(256)) * 4, "not_a_workbook"),
    ],
)
def test_what_is_not_a_workbook_is_named_for_what_it_is(head: bytes, code: str) -> None:
    with pytest.raises(InputRejected) as caught:
        detect_format(head, ".xlsx")
    assert caught.value.code == code
    assert "save it as an Excel workbook" in caught.value.message or "export it again" in caught.value.message


def test_containers_are_told_apart_by_content_not_by_name() -> None:
    assert detect_format(b"PK\x03\x04rest", ".xls") == "zip"
    assert detect_format(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", ".xlsx") == "xls"
    assert zip_format(["[Content_Types].xml", "xl/workbook.xml"]) == "xlsx"
    assert zip_format(["xl/workbook.bin"]) == "xlsb"
    assert zip_format(["mimetype", "content.xml"]) == "ods"
    assert is_encrypted_package(b"", "EncryptedPackage".encode("utf-16-le"))
    with pytest.raises(InputRejected, match="zip archive but not a workbook"):
        zip_format(["readme.txt"])


def test_text_from_a_file_is_shown_without_controls_direction_overrides_or_endless_length() -> None:
    assert printable("evil\u202etxt.exe\nnext\x07") == "evil?txt.exe next?"
    assert printable("x" * 100, limit=10) == "xxxxxxxxx…"
    assert printable("ventes été 株式会社 🚀") == "ventes été 株式会社 🚀"
    assert listed([f"s{i}" for i in range(12)]).endswith("'s9', and 2 more]")


def test_two_sheets_for_the_same_year_and_kind_are_refused() -> None:
    said = r"sheets \['2024', ' 2024 '\] both hold the hardware sales of 2024"
    with pytest.raises(InputRejected, match=said) as caught:
        contract_sheets(["2024", " 2024 ", "2024-C2"])
    assert caught.value.code == "duplicate_sheets"


def end(exit_code: int, log: str = "", *, is_timed_out: bool = False) -> ChildEnd:
    return ChildEnd(exit_code=exit_code, is_timed_out=is_timed_out, peak_rss_bytes=0, seconds=1.0, log_tail=log)


@pytest.mark.parametrize(
    ("how", "answer", "code", "words"),
    [
        (end(-signal.SIGKILL, is_timed_out=True), None, "reader_timed_out", "longer than 300 s"),
        (end(-signal.SIGALRM), None, "reader_timed_out", "longer than 300 s"),
        (end(-signal.SIGABRT, f"memory allocation of {512 << 30} bytes failed\n"), None, OOM, "512.0 GiB at once"),
        (end(0), {"code": OOM, "detail": "MemoryError"}, OOM, "4.0 GiB"),
        (end(-signal.SIGKILL), None, OOM, "killed by the system"),
        (end(0), {"code": "reader_panicked", "detail": "PanicException: x"}, "reader_panicked", "(PanicException: x)"),
        (end(-signal.SIGSEGV), None, "reader_crashed", "(SIGSEGV)"),
        (end(0), {"code": "reader_crashed", "detail": "ValueError: x"}, "reader_crashed", "failed on this file"),
        (end(1, "Traceback...\nImportError: no module\n"), None, "reader_failed", "could not run (exit status 1: Imp"),
    ],
)
def test_how_the_reader_ended_is_said_in_words(
    how: ChildEnd, answer: dict[str, str] | None, code: str, words: str
) -> None:
    said_code, message = crash(how, answer, LIMITS)
    assert said_code == code and words in message, message


def test_a_crash_is_the_machines_the_first_time_and_the_files_the_last() -> None:
    first = crash_error("reader_crashed", "it broke", crashes_before=0, limits=LIMITS)
    last = crash_error("reader_crashed", "it broke", crashes_before=1, limits=LIMITS)
    only = crash_error("reader_crashed", "it broke", crashes_before=0, limits=ReaderLimits(reader_crash_attempts=1))
    assert (type(first), first.retryable, first.code) == (TransientError, True, "reader_crashed")
    assert (type(last), last.retryable, last.message) == (
        InputRejected,
        False,
        "it broke (the reader crashed 2 times on this file; it is not tried again)",
    )
    assert isinstance(only, InputRejected) and "crashed once" in only.message


def test_the_readers_answer_may_only_name_files_it_wrote_in_its_folder(tmp_path: Path) -> None:
    (tmp_path / "2024.parquet").write_bytes(b"PAR1")
    sheet = {"sheet": {"name": "2024", "year": 2024, "kind": "hardware"}, "rows": 1, "columns": ["PI"]}
    answer: dict[str, Any] = {"sheets": [{**sheet, "parquet_path": "2024.parquet", "header_row": 0, "cell_errors": []}]}
    assert [s.parquet_path for s in sheets_from(answer, tmp_path)] == [tmp_path / "2024.parquet"]
    for name in ("../2024.parquet", "/etc/passwd", "missing.parquet"):
        answer["sheets"][0]["parquet_path"] = name
        with pytest.raises(SynoError, match="outside its folder"):
            sheets_from(answer, tmp_path)
