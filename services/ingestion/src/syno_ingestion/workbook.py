"""Reading a workbook with fastexcel and splitting its sheets to parquet (the I/O edge).

Runs only in the reader's child process (reader_child.py), after preflight.py passed the file:
fastexcel can abort or panic on a hostile file, and that must end the child, not the service.
Type guessing looks at every row (schema_sample_rows=None), so a column mixing numbers and
text becomes text instead of silently losing the text cells; cleaning parses it later.
Cells that still cannot be converted are listed, not lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastexcel
import polars as pl

from syno_ingestion.validation import (
    HEADER_SEARCH_ROWS,
    ContractSheet,
    SheetParquet,
    check_header,
    contract_sheets,
    duplicate_headers,
    find_header_row,
    listed,
    printable,
)
from syno_shared.errors import InputRejected

# How calamine words each failure (fastexcel raises one error type for all of them).
_FAILURES = (
    (
        ("cell limit",),
        "sheet_too_large",
        "a sheet is far larger than its data (stray cells or formatting far from it): delete the empty rows and "
        "columns, save again",
    ),
    (("password", "encrypt"), "password_protected", "the workbook is password-protected; save it without a password"),
    (
        ("zip", "eof", "truncat", "invalid", "corrupt", "cfb", "not a", "xml error"),
        "corrupt_file",
        "the file is corrupt or was only partly copied; export it again",
    ),
)


@contextlib.contextmanager
def worded_failures() -> Iterator[None]:
    """fastexcel's errors as rejections a person can act on (a panic is not an Exception: it goes on up)."""
    try:
        yield
    except fastexcel.FastExcelError as error:  # one type for corrupt, truncated, encrypted and odd files
        text = str(error).casefold()
        said = printable(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__, 300)
        for needles, code, advice in _FAILURES:
            if any(needle in text for needle in needles):
                raise InputRejected(f"{advice} ({said})", code=code) from error
        raise InputRejected(f"the file cannot be read as a workbook: {said}", code="unreadable_file") from error


def open_workbook(path: Path) -> fastexcel.ExcelReader:
    with worded_failures():
        return fastexcel.read_excel(path)


def split_sheets(path: Path, out_dir: Path) -> list[SheetParquet]:
    """Every contract sheet to `<out_dir>/<sheet>.parquet`; row counts equal the sheet's data rows."""
    if path.stat().st_size == 0:
        raise InputRejected("the file is empty (0 bytes); export the workbook again", code="empty_file")
    reader = open_workbook(path)
    sheets = contract_sheets(reader.sheet_names)
    out_dir.mkdir(parents=True, exist_ok=True)
    with worded_failures():
        return [_split_sheet(reader, sheet, out_dir) for sheet in sheets]


def _load(reader: fastexcel.ExcelReader, sheet: ContractSheet, header_row: int) -> tuple[pl.DataFrame, Any]:
    loaded = reader.load_sheet(sheet.name, header_row=header_row, schema_sample_rows=None)
    table, errors = loaded.to_arrow_with_errors()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame, errors


def _split_sheet(reader: fastexcel.ExcelReader, sheet: ContractSheet, out_dir: Path) -> SheetParquet:
    # Parsing a sheet costs the same for 30 rows as for all of them, so try the usual case (header on
    # the first row) with one full read, and look for the header further down only when it is not there.
    header_row = 0
    frame, errors = _load(reader, sheet, header_row)
    if find_header_row([frame.columns]) is None:
        preview = reader.load_sheet(sheet.name, header_row=None, n_rows=HEADER_SEARCH_ROWS).to_polars()
        if preview.height == 0:
            raise InputRejected(f"sheet '{printable(sheet.name)}' is empty; it needs a header row", code="empty_sheet")
        header_row = check_header(sheet.name, preview.rows())
        frame, errors = _load(reader, sheet, header_row)
    duplicates = duplicate_headers(frame.columns)
    if duplicates:
        raise InputRejected(
            f"sheet '{printable(sheet.name)}' repeats the columns {listed(duplicates)}", code="duplicate_columns"
        )
    parquet_path = out_dir / f"{sheet.name}.parquet"
    frame.write_parquet(parquet_path, compression="zstd", statistics=False)
    cell_errors = [
        {"row": error.offset_position[0] + 1, "column": frame.columns[error.offset_position[1]], "detail": error.detail}
        for error in (errors.errors if errors is not None else [])
    ]
    return SheetParquet(sheet, frame.height, frame.columns, parquet_path, header_row, cell_errors)
