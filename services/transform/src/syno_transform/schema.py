"""raw.sales_lines, column for column: the one home of the table's columns and their types.

The cleaning produces frames of exactly this schema and the loader COPYs them as they are. The table
itself is made by the transform's migrations; tests/transform/test_schema.py compares the live table
with this schema, column by column and type by type, so that a migration cannot drift from it.
"""

from __future__ import annotations

from typing import Final

import polars as pl

SALES_LINES_SCHEMA: Final = pl.Schema(
    {
        # where the line comes from
        "snapshot_id": pl.String,
        "source_sheet": pl.String,
        "source_row": pl.Int32,  # 1-based data row within the sheet (after the header)
        "sheet_kind": pl.String,  # 'hardware' | 'c2'
        "sheet_year": pl.Int32,
        # the contract's cells, cleaned and converted
        "invoice_number": pl.String,
        "invoice_date": pl.Date,
        "ship_date": pl.Date,
        "customer": pl.String,
        "country": pl.String,
        "region": pl.String,  # from the country mapping, 'UNMAPPED' when the country is unknown
        "product_raw": pl.String,  # the Product cell as written
        "product": pl.String,  # trimmed, upper-cased, leading "(...)" tag dropped
        "product_tag": pl.String,  # the dropped "(...)" tag, without parentheses
        "item_code": pl.String,
        "quantity": pl.Int64,
        "currency": pl.String,
        "price": pl.Float64,
        "total_local": pl.Float64,
        "revenue_usd": pl.Float64,  # null when the currency is unmapped (never guessed)
        "tt_discount": pl.Float64,
        "discount": pl.Float64,
        "delivery_from": pl.String,
        "ship_to": pl.String,
        "comments": pl.String,
        # the classification, decided once by the cleaning (dbt reads it, never re-derives it)
        "product_type": pl.String,  # product_rules stage 'type', 'UNMAPPED' for a blank product
        "sub_cat": pl.String,  # product_rules stage 'sub_cat', or C2-<service>-<capacity>-<plan>
        "tier": pl.String,  # 'T1'..'T5' on SVR-RM sub-categories, else null
        "is_c2": pl.Boolean,  # the product type is a C2 type (whatever the sheet)
        "c2_service_family": pl.String,  # C2 lines only; 'UNKNOWN' when no keyword matches
        "c2_capacity": pl.String,
        "c2_plan": pl.String,
        # quality flags and leftovers
        "is_country_unmapped": pl.Boolean,
        "is_currency_unmapped": pl.Boolean,
        "is_product_unmapped": pl.Boolean,
        "extras": pl.String,  # columns outside the contract, as a JSON object {header: text}
    }
)

JSON_COLUMNS: Final = frozenset({"extras"})
"""Text in the frame, jsonb in the table."""

_POSTGRES_TYPES: Final[dict[pl.DataType, str]] = {
    pl.String(): "text",
    pl.Int32(): "integer",
    pl.Int64(): "bigint",
    pl.Float64(): "double precision",
    pl.Date(): "date",
    pl.Boolean(): "boolean",
}


def postgres_columns() -> dict[str, str]:
    """Column -> the PostgreSQL type (as information_schema.columns.data_type names it) of raw.sales_lines."""
    return {
        name: "jsonb" if name in JSON_COLUMNS else _POSTGRES_TYPES[dtype] for name, dtype in SALES_LINES_SCHEMA.items()
    }
