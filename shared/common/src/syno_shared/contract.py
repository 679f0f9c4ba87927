"""The workbook contract (DESIGN.md section 4) as data: sheet names, columns, canonical names.

Everything that reads or writes a sale-out workbook (the sample generator, ingestion,
cleaning) takes its names from here, so one word means one thing end to end.
"""

from __future__ import annotations

import re
from typing import Final, Literal

CONTRACT_VERSION: Final = "1.0"

SheetKind = Literal["hardware", "c2"]

# "2024" is a year of hardware and licence sales; "2024-C2" a year of Synology C2 sales. ASCII digits only:
# "20٢٤" is no year.
_SHEET_PATTERN: Final = re.compile(r"^\s*(?P<year>(19|20)\d{2})\s*(?P<c2>-\s*C2)?\s*$", re.IGNORECASE | re.ASCII)

# Workbook header -> canonical column name used in parquet, raw.* and dbt.
WORKBOOK_COLUMNS: Final[dict[str, str]] = {
    "PI": "invoice_number",
    "InvDate": "invoice_date",
    "ShipDate": "ship_date",
    "Customer": "customer",
    "Country": "country",
    "Product": "product",
    "ItemCode": "item_code",
    "Quantity": "quantity",
    "Currency": "currency",
    "Price": "price",
    "Total": "total_local",
    "T/T Discount": "tt_discount",
    "Discount": "discount",
    "DeliveryFrom": "delivery_from",
    "ShipTo": "ship_to",
    "Comments": "comments",
}

# A sheet missing any of these cannot be turned into sell-out numbers.
REQUIRED_COLUMNS: Final[tuple[str, ...]] = (
    "PI",
    "InvDate",
    "Customer",
    "Country",
    "Product",
    "Quantity",
    "Currency",
    "Total",
)

WORKBOOK_SUFFIXES: Final[frozenset[str]] = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"})


def header_key(name: object) -> str:
    """Header names match case- and space-insensitively: ' t/t  discount ' == 'T/T Discount'."""
    return re.sub(r"\s+", "", str(name)).casefold()


_CANONICAL_BY_KEY: Final[dict[str, str]] = {header_key(k): v for k, v in WORKBOOK_COLUMNS.items()}


def canonical_column(header: object) -> str | None:
    """The canonical name of a workbook header, or None for an extra column."""
    return _CANONICAL_BY_KEY.get(header_key(header))


def extra_column_name(header: object) -> str:
    """A stable snake_case name for a column outside the contract (kept in raw as an extra)."""
    slug = re.sub(r"[^0-9a-z]+", "_", str(header).strip().casefold()).strip("_")
    return f"extra_{slug or 'unnamed'}"


def sheet_kind(sheet_name: str) -> tuple[int, SheetKind] | None:
    """(year, kind) for a contract sheet name, None for any other sheet (notes, pivots...)."""
    match = _SHEET_PATTERN.match(sheet_name)
    if match is None:
        return None
    return int(match["year"]), ("c2" if match["c2"] else "hardware")
