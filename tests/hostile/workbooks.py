"""Writers for workbooks of every format the contract accepts, built byte by byte where no library
writes them (.xls, .xlsb), and for the zips the hostile corpus tampers with. Nothing binary is
committed: every file is written at test time.
"""

from __future__ import annotations

import datetime as dt
import struct
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd
import xlsxwriter

HEADER = ["PI", "InvDate", "Customer", "Country", "Product", "Quantity", "Currency", "Total"]
Rows = Sequence[Sequence[object]]


def line(i: int, customer: str = "Müller IT") -> list[object]:
    return [
        f"PI{i}",
        dt.datetime(2024, 1, 1) + dt.timedelta(days=i % 300),
        customer,
        "Germany",
        "RS1221+",
        1,
        "EUR",
        1000.0 + i,
    ]


def sales(count: int, start: int = 0) -> list[list[object]]:
    """A header and `count` contract lines."""
    return [list(HEADER), *(line(i) for i in range(start, start + count))]


def write_xlsx(path: Path, sheets: Mapping[str, Rows]) -> Path:
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
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


def write_ods(path: Path, sheets: Mapping[str, Rows]) -> Path:
    """An OpenDocument spreadsheet (odfpy through pandas), whatever `path` is called."""
    staging = path.with_name(path.name + ".ods")
    with pd.ExcelWriter(staging, engine="odf") as writer:
        for name, rows in sheets.items():
            pd.DataFrame(list(rows[1:]), columns=list(rows[0])).to_excel(writer, sheet_name=name, index=False)
    staging.rename(path)
    return path


def rewrite_zip(
    source: Path, target: Path, changes: Mapping[str, Callable[[bytes], bytes]], added: Mapping[str, bytes] = {}
) -> Path:
    """A copy of a zip with some entries rewritten and others added."""
    with zipfile.ZipFile(source) as original:
        entries = {name: original.read(name) for name in original.namelist()}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as rewritten:
        for name, data in entries.items():
            rewritten.writestr(name, changes[name](data) if name in changes else data)
        for name, data in added.items():
            rewritten.writestr(name, data)
    return target


# ------------------------------------------------------------------------------------------ .xls


def _biff(kind: int, body: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(body)) + body


def _biff_bof(substream: int) -> bytes:
    return _biff(0x0809, struct.pack("<HHHHII", 0x0600, substream, 0x0DBB, 0x07CC, 0, 0x06))


def _biff_cell(row: int, column: int, value: object) -> bytes:
    if isinstance(value, dt.datetime):
        value = (value - dt.datetime(1899, 12, 30)).days
    if isinstance(value, int | float):
        return _biff(0x0203, struct.pack("<HHHd", row, column, 0, float(value)))  # NUMBER
    text = str(value).encode("utf-16-le")
    return _biff(0x0204, struct.pack("<HHHHB", row, column, 0, len(text) // 2, 1) + text)  # LABEL


def biff8_stream(sheets: Mapping[str, Rows]) -> bytes:
    """A BIFF8 Workbook stream: globals (BOF, CODEPAGE, one BOUNDSHEET8 per sheet, EOF), then each sheet."""
    bodies = []
    for rows in sheets.values():
        width = max((len(row) for row in rows), default=0)
        cells = b"".join(_biff_cell(r, c, v) for r, row in enumerate(rows) for c, v in enumerate(row) if v is not None)
        dimensions = _biff(0x0200, struct.pack("<IIHHH", 0, len(rows), 0, width, 0))
        bodies.append(_biff_bof(0x0010) + dimensions + cells + _biff(0x000A))

    def globals_at(offsets: Sequence[int]) -> bytes:
        bound = b"".join(
            _biff(0x0085, struct.pack("<IBBBB", offset, 0, 0, len(name), 0) + name.encode("latin-1"))
            for offset, name in zip(offsets, sheets, strict=True)
        )
        return _biff_bof(0x0005) + _biff(0x0042, struct.pack("<H", 1200)) + bound + _biff(0x000A)

    offsets, at = [], len(globals_at([0] * len(sheets)))
    for body in bodies:
        offsets.append(at)
        at += len(body)
    return globals_at(offsets) + b"".join(bodies)


_END, _FREE, _FAT, _NONE = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD, 0xFFFFFFFF


def _directory_entry(name: str, kind: int, child: int, start: int, size: int) -> bytes:
    encoded = (name + "\0").encode("utf-16-le") if name else b""
    return (
        encoded.ljust(64, b"\0")
        + struct.pack("<HBB", len(encoded), kind, 1)
        + struct.pack("<III", _NONE, _NONE, child)
        + bytes(36)
        + struct.pack("<IQ", start, size)
    )


def compound_file(stream: bytes, stream_name: str = "Workbook") -> bytes:
    """An OLE compound file (CFB v3, 512-byte sectors: FAT, directory, then the stream) of one stream."""
    stream = stream.ljust(4096, b"\0")  # shorter streams would live in the mini stream
    sectors = -(-len(stream) // 512)
    fat = [_FAT, _END, *range(3, 2 + sectors), _END]
    if len(fat) > 128:
        raise ValueError("one FAT sector maps 128 sectors: keep the stream under 63 KB")
    directory = (
        _directory_entry("Root Entry", 5, 1, _END, 0)
        + _directory_entry(stream_name, 2, _NONE, 2, len(stream))
        + _directory_entry("", 0, _NONE, 0, 0) * 2
    )
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack("<HHHHH", 0x003E, 0x0003, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<9I", 0, 1, 1, 0, 4096, _END, 0, _END, 0)
        + struct.pack("<109I", 0, *([_FREE] * 108))
    )
    fat_sector = struct.pack("<128I", *fat, *([_FREE] * (128 - len(fat))))
    return header + fat_sector + directory + stream.ljust(sectors * 512, b"\0")


def write_xls(path: Path, sheets: Mapping[str, Rows]) -> Path:
    path.write_bytes(compound_file(biff8_stream(sheets)))
    return path


# ----------------------------------------------------------------------------------------- .xlsb


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, byte = value >> 7, value & 0x7F
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def xlsb_record(kind: int, body: bytes = b"") -> bytes:
    return _varint(kind) + _varint(len(body)) + body


def _wide(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def xlsb_sheet(rows: Rows, extra_cells: bytes = b"") -> bytes:
    """BrtBeginSheet, BrtWsDim, BrtBeginSheetData, a BrtRowHdr per row with BrtCellReal/BrtCellSt cells."""
    width = max((len(row) for row in rows), default=1)
    body = xlsb_record(0x81) + xlsb_record(0x94, struct.pack("<IIII", 0, max(len(rows) - 1, 0), 0, width - 1))
    body += xlsb_record(0x91)
    for r, row in enumerate(rows):
        body += xlsb_record(0x00, struct.pack("<IIHBBBI", r, 0, 0, 0, 0, 0, 0))
        for c, value in enumerate(row):
            if isinstance(value, dt.datetime):
                value = (value - dt.datetime(1899, 12, 30)).days
            if isinstance(value, int | float):
                body += xlsb_record(0x05, struct.pack("<IId", c, 0, float(value)))
            else:
                body += xlsb_record(0x06, struct.pack("<II", c, 0) + _wide(str(value)))
    return body + extra_cells + xlsb_record(0x92) + xlsb_record(0x82)


_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def write_xlsb(path: Path, sheets: Mapping[str, bytes]) -> Path:
    """An .xlsb of already built sheet parts (xlsb_sheet), named in xl/workbook.bin."""
    book = xlsb_record(0x83) + xlsb_record(0x8F)
    relations = []
    for index, name in enumerate(sheets, start=1):
        book += xlsb_record(0x9C, struct.pack("<II", 0, index) + _wide(f"rId{index}") + _wide(name))
        relations.append(
            f'<Relationship Id="rId{index}" Type="{_OFFICE}/worksheet" Target="worksheets/sheet{index}.bin"/>'
        )
    book += xlsb_record(0x90) + xlsb_record(0x84)
    binary = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Default Extension="bin" ContentType="{binary}"/><Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            f'<?xml version="1.0"?><Relationships xmlns="{_RELS}"><Relationship Id="rId1" '
            f'Type="{_OFFICE}/officeDocument" Target="xl/workbook.bin"/></Relationships>',
        )
        archive.writestr("xl/workbook.bin", book)
        archive.writestr(
            "xl/_rels/workbook.bin.rels",
            f'<?xml version="1.0"?><Relationships xmlns="{_RELS}">{"".join(relations)}</Relationships>',
        )
        for index, part in enumerate(sheets.values(), start=1):
            archive.writestr(f"xl/worksheets/sheet{index}.bin", part)
    return path
