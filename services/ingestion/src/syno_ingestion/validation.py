"""The workbook contract checks and the snapshot delta: pure functions, no I/O."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syno_shared.contract import REQUIRED_COLUMNS, SheetKind, canonical_column, header_key, sheet_kind
from syno_shared.errors import InputRejected
from syno_shared.events import SnapshotDelta

HEADER_SEARCH_ROWS = 30
NAMES_SHOWN = 10
# Characters that reorder what a person reads: 'report\u202exslx.exe' reads as 'reportexe.xlsx'.
_DIRECTION_MARKS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")
_REQUIRED_KEYS = frozenset(header_key(column) for column in REQUIRED_COLUMNS)


@dataclass(frozen=True)
class ContractSheet:
    name: str
    year: int
    kind: SheetKind


@dataclass(frozen=True)
class SheetParquet:
    """A sales sheet written to parquet: its rows, columns, header row and the cells that did not convert."""

    sheet: ContractSheet
    rows: int
    columns: list[str]
    parquet_path: Path
    header_row: int
    cell_errors: list[dict[str, Any]]


def printable(text: str, limit: int = 60) -> str:
    """Text from a file, safe to show a person in a message, a log line or a chat alert: control and
    bidirectional-override characters become '?', and a long text is cut with an ellipsis."""
    cleaned = "".join(
        " "
        if char in "\t\n\r"
        else "?"
        if char in _DIRECTION_MARKS or unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp")
        else char
        for char in text
    )
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def listed(names: Sequence[str]) -> str:
    """A few names for a message: the first NAMES_SHOWN, each printable, then how many more."""
    shown = ", ".join(f"'{printable(name, 40)}'" for name in names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f"[{shown}{f', and {more:,} more' if more > 0 else ''}]"


def contract_sheets(sheet_names: Sequence[str]) -> list[ContractSheet]:
    """The year and year-C2 sheets; other sheets (notes, pivots) are ignored. None at all is an error,
    and so are two sheets for the same year and kind (' 2024' and '2024'), which would count twice."""
    sheets = [ContractSheet(name, *kind) for name in sheet_names if (kind := sheet_kind(name)) is not None]
    if not sheets:
        raise InputRejected(
            f"no sales sheets found: sheets are {listed(sheet_names)}; expected one named by year ('2024') "
            "and one per year of C2 sales ('2024-C2')",
            code="no_sales_sheets",
        )
    seen: dict[tuple[int, SheetKind], str] = {}
    for sheet in sheets:
        earlier = seen.setdefault((sheet.year, sheet.kind), sheet.name)
        if earlier != sheet.name:
            raise InputRejected(
                f"sheets {listed([earlier, sheet.name])} both hold the {sheet.kind} sales of {sheet.year}; "
                "keep one of them",
                code="duplicate_sheets",
            )
    return sheets


def find_header_row(preview: Sequence[Sequence[Any]]) -> int | None:
    """Index of the first row holding every required header (title rows above it are skipped)."""
    for index, row in enumerate(preview[:HEADER_SEARCH_ROWS]):
        keys = {header_key(cell) for cell in row if cell is not None}
        if keys >= _REQUIRED_KEYS:
            return index
    return None


def missing_columns(headers: Sequence[str]) -> list[str]:
    present = {header_key(header) for header in headers}
    return [column for column in REQUIRED_COLUMNS if header_key(column) not in present]


def check_header(sheet: str, preview: Sequence[Sequence[Any]]) -> int:
    """The header row index of a sheet, or a rejection naming the missing columns."""
    header_row = find_header_row(preview)
    if header_row is not None:
        return header_row
    best = max(
        preview[:HEADER_SEARCH_ROWS], key=lambda row: len(set(map(header_key, row)) & _REQUIRED_KEYS), default=[]
    )
    missing = missing_columns([str(cell) for cell in best if cell is not None])
    raise InputRejected(
        f"sheet '{printable(sheet)}': no header row with the required columns in its first {HEADER_SEARCH_ROWS} rows; "
        f"missing {missing} (names match ignoring case and spaces)",
        code="wrong_schema",
    )


def duplicate_headers(headers: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    duplicates = []
    for header in headers:
        key = canonical_column(header) or header_key(header)
        if key in seen:
            duplicates.append(header)
        seen[key] = header
    return duplicates


def snapshot_delta(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> SnapshotDelta:
    """What changed against the previous accepted snapshot: size, sheets, rows per sheet, columns.

    Both arguments hold `size_bytes` and `sheets` = {name: {"rows": int, "columns": [..]}}.
    """
    if previous is None:
        return SnapshotDelta(is_first=True)
    now, before = current["sheets"], previous["sheets"]
    common = sorted(set(now) & set(before))
    return SnapshotDelta(
        is_first=False,
        previous_snapshot_id=previous.get("snapshot_id"),
        size_bytes=current["size_bytes"] - previous["size_bytes"],
        sheets_added=sorted(set(now) - set(before)),
        sheets_removed=sorted(set(before) - set(now)),
        rows={name: now[name]["rows"] - before[name]["rows"] for name in common},
        columns_added={
            name: added
            for name in common
            if (added := sorted(set(now[name]["columns"]) - set(before[name]["columns"])))
        },
        columns_removed={
            name: gone for name in common if (gone := sorted(set(before[name]["columns"]) - set(now[name]["columns"])))
        },
    )


def _gained(sheet: Mapping[str, Any], other: Mapping[str, Any]) -> list[str]:
    """Columns `sheet` has that `other` lacks, sorted."""
    return sorted(set(sheet["columns"]) - set(other["columns"]))
