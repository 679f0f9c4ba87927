"""What a file is and what reading it would cost, found before any workbook reader sees it.

The reader (calamine, through fastexcel) believes what a file says: a sheet with one cell at
XFD1048576 makes it ask for 512 GiB and abort, a few MB of zip that inflate to a GiB are read
in full. So the file's first bytes say which format it really holds (whatever its name), and a
zip's own records are checked against `ReaderLimits`: its entries, how far they inflate, how many
sheets, and how many rows and columns each sales sheet declares (`<dimension ref=...>`, found by
streaming the first bytes of the sheet, never inflating it whole). Declarations can lie; the
reader's process limits (reader.py) catch what a liar gets past these checks.

Runs inside the reader's child process, so even these checks are bounded in memory and time.
"""

from __future__ import annotations

import html
import posixpath
import re
import struct
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from syno_ingestion.limits import ReaderLimits
from syno_ingestion.validation import printable
from syno_shared.contract import sheet_kind
from syno_shared.errors import InputRejected

WorkbookFormat = Literal["xlsx", "xlsb", "xls", "ods"]
SUFFIXES: Mapping[WorkbookFormat, str] = {"xlsx": ".xlsx", "xlsb": ".xlsb", "xls": ".xls", "ods": ".ods"}

_ZIP = b"PK\x03\x04"
_EMPTY_ZIP = b"PK\x05\x06"
_CFB = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")
_RATIO_FROM_BYTES = 1 << 20  # small entries (styles, themes) compress well and cost nothing
_DIMENSION_HEAD_BYTES = 64 * 1024  # the dimension comes before the cells, after a short sheetPr
_PARTS_MAX_BYTES = 4 << 20  # workbook.xml and its rels: a few KB in real files
_DIMENSION = re.compile(
    rb"<(?:\w+:)?dimension\s+ref\s*=\s*[\"']\$?([A-Z]{1,3})\$?(\d{1,7})(?::\$?([A-Z]{1,3})\$?(\d{1,7}))?"
)
# What zipfile raises on a damaged or crafted archive (ValueError covers bad names and sizes).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    EOFError,
    NotImplementedError,  # zipfile's answer to a compression method it does not support: a refused file
    KeyError,
    ValueError,
    struct.error,
)
_SHEET = re.compile(rb"<(?:\w+:)?sheet\s[^>]*>")
_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\s[^>]*>")


@dataclass(frozen=True)
class Entry:
    """One file inside a zip, as its central directory declares it."""

    name: str
    size: int
    compressed_size: int


@dataclass(frozen=True)
class Dimension:
    """A sheet's declared used range: first and last row and column, 1-based."""

    first_row: int
    first_column: int
    last_row: int
    last_column: int

    @property
    def rows(self) -> int:
        return self.last_row - self.first_row + 1

    @property
    def columns(self) -> int:
        return self.last_column - self.first_column + 1

    @property
    def cells(self) -> int:
        return self.rows * self.columns

    @property
    def reference(self) -> str:
        return f"{column_letters(self.first_column)}{self.first_row}:{column_letters(self.last_column)}{self.last_row}"


def human_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def detect_format(head: bytes, suffix: str) -> Literal["zip", "xls"]:
    """The container in the first bytes of a file: a zip (xlsx, xlsb, ods), an OLE file (xls), or a refusal."""
    if head.startswith((_ZIP, _EMPTY_ZIP)):
        return "zip"
    if head.startswith(_CFB):
        return "xls"
    named = f"named '{printable(suffix)}'" if suffix else "without a suffix"
    if b"\x00" not in head[:4096] and head.lstrip()[:1] == b"<":
        raise InputRejected(
            f"the file holds XML or HTML (a web page or an 'XML Spreadsheet 2003'), not a workbook, though it is "
            f"{named}; open it in Excel and save it as an Excel workbook (.xlsx)",
            code="not_a_workbook",
        )
    if b"\x00" not in head[:4096] and _looks_like_text(head[:4096]):
        raise InputRejected(
            f"the file holds text (CSV or similar), not a workbook, though it is {named}; open it in Excel "
            "and save it as an Excel workbook (.xlsx)",
            code="csv_not_workbook",
        )
    raise InputRejected(
        "the file is not a workbook (its content is neither .xlsx, .xlsm, .xlsb, .xls nor .ods); export it again",
        code="not_a_workbook",
    )


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    printable_share = sum(char.isprintable() or char in "\r\n\t" for char in text) / max(len(text), 1)
    return printable_share > 0.95


def is_encrypted_package(head: bytes, directory: bytes) -> bool:
    """An OLE file holding an 'EncryptedPackage' stream is a password-protected .xlsx, not an .xls."""
    return _ENCRYPTED in head or _ENCRYPTED in directory


def _first_directory_sector(handle: BinaryIO, head: bytes) -> bytes:
    """The OLE file's first directory sector, where its streams are named (header fields at 30 and 48)."""
    if len(head) < 52:
        return b""
    (shift,) = struct.unpack_from("<H", head, 30)
    (sector,) = struct.unpack_from("<I", head, 48)
    size = 1 << min(shift, 12)
    handle.seek((sector + 1) * size)
    return handle.read(size)


def zip_format(names: Sequence[str]) -> WorkbookFormat:
    """Which workbook a zip holds, from the parts it contains."""
    present = set(names)
    if "xl/workbook.xml" in present:
        return "xlsx"
    if "xl/workbook.bin" in present:
        return "xlsb"
    if "content.xml" in present:
        return "ods"
    raise InputRejected(
        "the file is a zip archive but not a workbook (no Excel or OpenDocument parts inside); export it again",
        code="not_a_workbook",
    )


def check_archive(entries: Sequence[Entry], limits: ReaderLimits) -> None:
    """Entry count, total inflated size and each entry's compression ratio, as the zip declares them."""
    if len(entries) > limits.max_zip_entries:
        raise InputRejected(
            f"the workbook's zip holds {len(entries):,} files; at most {limits.max_zip_entries:,} are accepted "
            "(a real workbook holds a few dozen); export it again",
            code="too_many_entries",
        )
    total = sum(entry.size for entry in entries)
    if total > limits.max_uncompressed_bytes:
        raise InputRejected(
            f"the workbook would take {human_bytes(total)} once unpacked; at most "
            f"{human_bytes(limits.max_uncompressed_bytes)} are read. Split it, or delete unused sheets and rows",
            code="inflates_too_much",
        )
    for entry in entries:
        ratio = entry.size / max(entry.compressed_size, 1)
        if entry.size >= _RATIO_FROM_BYTES and ratio > limits.max_compression_ratio:
            raise InputRejected(
                f"'{printable(entry.name)}' inside the workbook unpacks from {human_bytes(entry.compressed_size)} "
                f"to {human_bytes(entry.size)} ({ratio:,.0f} times; real sheets: 5 to 20 times): a zip bomb or a "
                "damaged file, not read",
                code="inflates_too_much",
            )
    sheets = sum(1 for entry in entries if _is_sheet_part(entry.name))
    if sheets > limits.max_sheets:
        raise InputRejected(
            f"the workbook has {sheets:,} sheets; at most {limits.max_sheets:,} are accepted. Move old years "
            "or notes into another file",
            code="too_many_sheets",
        )


def _is_sheet_part(name: str) -> bool:
    return re.fullmatch(r"xl/worksheets/[^/]+\.(xml|bin)", name) is not None


def column_number(letters: str) -> int:
    """'A' -> 1, 'XFD' -> 16384."""
    number = 0
    for letter in letters:
        number = number * 26 + ord(letter) - ord("A") + 1
    return number


def column_letters(number: int) -> str:
    """1 -> 'A', 16384 -> 'XFD'."""
    letters = ""
    while number > 0:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def parse_dimension(head: bytes) -> Dimension | None:
    """The `<dimension ref="A1:H120"/>` near the start of a sheet's XML, or None when it is not there."""
    match = _DIMENSION.search(head)
    if match is None:
        return None
    first_column, first_row = column_number(match[1].decode()), int(match[2])
    if match[3] is None:
        return Dimension(first_row, first_column, first_row, first_column)
    last_column, last_row = column_number(match[3].decode()), int(match[4])
    rows, columns = sorted((first_row, last_row)), sorted((first_column, last_column))
    return Dimension(rows[0], columns[0], rows[1], columns[1])


def check_sheet(sheet: str, dimension: Dimension, limits: ReaderLimits) -> None:
    """A sales sheet must not declare more columns or cells than the reader may hold."""
    shown = f"sheet '{printable(sheet)}' declares the range {dimension.reference}"
    advice = "usually a stray cell or formatting far from the data: delete the empty rows and columns, save again"
    if dimension.columns > limits.max_columns:
        raise InputRejected(
            f"{shown}, {dimension.columns:,} columns; at most {limits.max_columns:,} are read ({advice})",
            code="too_many_columns",
        )
    if dimension.cells > limits.max_sheet_cells:
        raise InputRejected(
            f"{shown}, {dimension.rows:,} rows by {dimension.columns:,} columns = {dimension.cells:,} cells; at most "
            f"{limits.max_sheet_cells:,} are read ({advice})",
            code="sheet_too_large",
        )


def _attribute(element: bytes, name: bytes) -> str | None:
    match = re.search(rb"(?:^|\s)" + re.escape(name) + rb"\s*=\s*(?:\"([^\"]*)\"|'([^']*)')", element)
    if match is None:
        return None
    return html.unescape((match[1] if match[1] is not None else match[2]).decode("utf-8", "replace"))


def sheet_parts(workbook_xml: bytes, rels_xml: bytes) -> dict[str, str]:
    """Sheet name -> the zip entry holding it, from xl/workbook.xml and xl/_rels/workbook.xml.rels."""
    targets: dict[str, str] = {}
    for element in _RELATIONSHIP.findall(rels_xml):
        relation, target = _attribute(element, b"Id"), _attribute(element, b"Target")
        if relation is not None and target is not None:
            path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
            targets[relation] = path
    parts: dict[str, str] = {}
    for element in _SHEET.findall(workbook_xml):
        name, relation = _attribute(element, b"name"), _attribute(element, b"r:id")
        if name is not None and relation is not None and relation in targets:
            parts[name] = targets[relation]
    return parts


def _read_head(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with archive.open(name) as part:
        return part.read(limit)


def check_zip_records(handle: BinaryIO, size: int, limits: ReaderLimits) -> None:
    """The end-of-archive record's entry count and directory size, checked before the directory is parsed."""
    tail_size = min(size, 22 + 65_535)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(_EMPTY_ZIP)
    if at < 0 or len(tail) - at < 22:
        raise InputRejected(
            "the file is corrupt or was only partly copied (the end of its zip is missing); export it again",
            code="corrupt_file",
        )
    entries, directory_size = struct.unpack_from("<HI", tail, at + 10)
    if (entries == 0xFFFF or directory_size == 0xFFFFFFFF) and at >= 20 and tail[at - 20 : at - 16] == b"PK\x06\x07":
        (offset,) = struct.unpack_from("<Q", tail, at - 20 + 8)
        handle.seek(min(offset, size))
        record = handle.read(56)
        if record[:4] == b"PK\x06\x06" and len(record) == 56:
            entries, directory_size = struct.unpack_from("<QQ", record, 32)
    if entries > limits.max_zip_entries or directory_size > limits.max_zip_entries * 1024:
        raise InputRejected(
            f"the workbook's zip holds {entries:,} files ({human_bytes(directory_size)} of directory); at most "
            f"{limits.max_zip_entries:,} are accepted (a real workbook holds a few dozen); export it again",
            code="too_many_entries",
        )


def inspect_workbook(path: Path, limits: ReaderLimits) -> WorkbookFormat:
    """The workbook format `path` really holds, once its declarations fit the limits; InputRejected otherwise."""
    size = path.stat().st_size
    if size == 0:
        raise InputRejected("the file is empty (0 bytes); export the workbook again", code="empty_file")
    with path.open("rb") as handle:
        head = handle.read(8192)
        if detect_format(head, path.suffix) == "xls":
            if is_encrypted_package(head, _first_directory_sector(handle, head)):
                raise InputRejected(
                    "the workbook is password-protected; save it without a password", code="password_protected"
                )
            return "xls"
        check_zip_records(handle, size, limits)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            check_archive([Entry(info.filename, info.file_size, info.compress_size) for info in infos], limits)
            workbook_format = zip_format([info.filename for info in infos])
            if workbook_format == "xlsx":
                _check_sales_sheets(archive, limits)
    except _ZIP_ERRORS as error:
        raise InputRejected(
            f"the file is corrupt or was only partly copied; export it again ({printable(str(error))})",
            code="corrupt_file",
        ) from error
    return workbook_format


def _check_sales_sheets(archive: zipfile.ZipFile, limits: ReaderLimits) -> None:
    names = set(archive.namelist())
    rels = "xl/_rels/workbook.xml.rels"
    parts = sheet_parts(
        _read_head(archive, "xl/workbook.xml", _PARTS_MAX_BYTES),
        _read_head(archive, rels, _PARTS_MAX_BYTES) if rels in names else b"",
    )
    for sheet, part in parts.items():
        if sheet_kind(sheet) is None or part not in names:
            continue  # the reader never loads notes, pivots or other sheets
        dimension = parse_dimension(_read_head(archive, part, _DIMENSION_HEAD_BYTES))
        if dimension is not None:
            check_sheet(sheet, dimension, limits)
