"""split_sheets on real files: every sheet to parquet, nothing dropped, bad files refused clearly."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import msoffcrypto.format.ooxml
import pandas as pd
import polars as pl
import pytest
import xlsxwriter

from syno_ingestion.share import StabilityTracker, list_share
from syno_ingestion.workbook import split_sheets
from syno_shared.errors import InputRejected

HEADER = ["PI", "InvDate", "Customer", "Country", "Product", "Quantity", "Currency", "Total", "Sales Rep"]


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    workbook = xlsxwriter.Workbook(str(path))
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    for name, rows in sheets.items():
        sheet = workbook.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, dt.datetime):
                    sheet.write_datetime(r, c, value, date_format)
                elif value is not None:
                    sheet.write(r, c, value)
    workbook.close()
    return path


def line(i: int) -> list[object]:
    return [
        f"PI{i}",
        dt.datetime(2024, 1, 1) + dt.timedelta(days=i % 300),
        "Müller IT",
        "Germany",
        "RS1221+",
        i % 5 + 1,
        "EUR",
        1000.0 + i,
        "Ann",
    ]


def test_every_sheet_lands_with_all_rows_and_a_title_row_above_the_header(tmp_path: Path) -> None:
    rows = [line(i) for i in range(1500)]
    workbook = write_xlsx(
        tmp_path / "w.xlsx",
        {
            "2024": [["Sale-out export 2024"], [], HEADER, *rows],
            "2024-C2": [HEADER, line(1), line(2)],
            "Notes": [["not a sales sheet"]],
        },
    )
    landed = split_sheets(workbook, tmp_path / "out")
    assert [(s.sheet.name, s.rows, s.header_row) for s in landed] == [("2024", 1500, 2), ("2024-C2", 2, 0)]
    frame = pl.read_parquet(landed[0].parquet_path)
    assert frame.columns == HEADER  # extra columns are kept for raw
    assert frame.height == 1500
    assert frame["Total"].sum() == pytest.approx(sum(1000.0 + i for i in range(1500)))


def test_text_after_the_first_thousand_rows_is_kept_not_nulled(tmp_path: Path) -> None:
    """fastexcel guesses types from the first 1000 rows by default; a late text cell must survive."""
    rows = [line(i) for i in range(1200)]
    rows[1100][7] = "1,234.50"  # a number stored as text, far down the sheet
    rows[1101][1] = "2024-05-06"  # a date written as text
    workbook = write_xlsx(tmp_path / "w.xlsx", {"2024": [HEADER, *rows]})
    frame = pl.read_parquet(split_sheets(workbook, tmp_path / "out")[0].parquet_path)
    assert frame["Total"][1100] == "1,234.50"
    assert frame["InvDate"][1101] == "2024-05-06"
    assert frame["Total"].null_count() == 0 and frame["InvDate"].null_count() == 0


def test_ods_workbooks_are_read(tmp_path: Path) -> None:
    path = tmp_path / "w.ods"
    with pd.ExcelWriter(path, engine="odf") as writer:
        pd.DataFrame([line(i) for i in range(5)], columns=HEADER).to_excel(writer, sheet_name="2025", index=False)
    landed = split_sheets(path, tmp_path / "out")
    assert [(s.sheet.name, s.rows) for s in landed] == [("2025", 5)]


def rejected(path: Path, tmp_path: Path) -> InputRejected:
    with pytest.raises(InputRejected) as caught:
        split_sheets(path, tmp_path / "out")
    return caught.value


def test_bad_files_are_rejected_with_a_code_and_advice(tmp_path: Path) -> None:
    good = write_xlsx(tmp_path / "good.xlsx", {"2024": [HEADER, line(1)]})
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    corrupt = tmp_path / "corrupt.xlsx"
    corrupt.write_bytes(b"this is not a spreadsheet at all" * 100)
    wrong = write_xlsx(tmp_path / "wrong.xlsx", {"2024": [["Invoice", "Date", "Amount"], ["A", 1, 2]]})
    no_sales = write_xlsx(tmp_path / "nosales.xlsx", {"Sheet1": [HEADER, line(1)]})
    empty_sheet = write_xlsx(tmp_path / "emptysheet.xlsx", {"2024": []})

    assert rejected(empty, tmp_path).code == "empty_file"
    assert rejected(truncated, tmp_path).code == "corrupt_file"
    assert rejected(corrupt, tmp_path).code in {"corrupt_file", "unreadable_file"}
    wrong_error = rejected(wrong, tmp_path)
    assert wrong_error.code == "wrong_schema" and "missing" in wrong_error.message
    assert rejected(no_sales, tmp_path).code == "no_sales_sheets"
    assert rejected(empty_sheet, tmp_path).code == "empty_sheet"


def test_password_protected_workbook_is_named_as_such(tmp_path: Path) -> None:
    plain = write_xlsx(tmp_path / "plain.xlsx", {"2024": [HEADER, line(1)]})
    locked = tmp_path / "locked.xlsx"
    with plain.open("rb") as source, locked.open("wb") as target:
        msoffcrypto.format.ooxml.OOXMLFile(source).encrypt("secret", target)
    error = rejected(locked, tmp_path)
    assert error.code == "password_protected", error.message


def test_a_file_written_slowly_is_taken_only_after_the_copy_ends(tmp_path: Path) -> None:
    source = write_xlsx(tmp_path / "src.xlsx", {"2024": [HEADER, *[line(i) for i in range(3000)]]})
    share = tmp_path / "share"
    share.mkdir()
    payload = source.read_bytes()
    target = share / "slow.xlsx"
    finished = threading.Event()

    def copy_in_chunks() -> None:
        with target.open("wb") as handle:
            for start in range(0, len(payload), 2048):
                handle.write(payload[start : start + 2048])
                handle.flush()
                time.sleep(0.01)
        finished.set()

    writer = threading.Thread(target=copy_in_chunks)
    tracker = StabilityTracker(stable_polls=3)  # 0.3 s unchanged: far longer than a pause between chunks
    writer.start()
    taken_while_copying = []
    taken_after = []
    while not finished.is_set():
        taken_while_copying += tracker.observe(list_share(share))
        time.sleep(0.1)
    writer.join()
    for _ in range(4):
        taken_after += tracker.observe(list_share(share))
    assert taken_while_copying == []
    assert taken_after == [target]
    assert split_sheets(target, tmp_path / "out")[0].rows == 3000
