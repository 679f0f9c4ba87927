"""Clean and classify the sheets of a sale-out workbook into raw.sales_lines rows (DESIGN.md section 4).

Composes the concepts: cells (text, numbers, dates), drop rules (blank, subtotal, repeated header)
and products (the classification), plus the country and currency lookups. Pure functions over
polars: a whole sheet is one lazy query collected once. Nothing is guessed: a value that cannot be
converted becomes null and is counted, and an unknown country, currency or product keeps its row
and is flagged and counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import polars as pl

from syno_shared.contract import WORKBOOK_COLUMNS, canonical_column, sheet_kind
from syno_transform.cells import as_text, clean_cell, convert, extras_json
from syno_transform.drop_rules import DROP_REASONS, drop_reason
from syno_transform.products import UNMAPPED, classify_products
from syno_transform.reference import Reference, match_key
from syno_transform.schema import SALES_LINES_SCHEMA

UNMAPPED_SCHEMA: Final = pl.Schema({"field": pl.String, "value": pl.String, "rows": pl.Int64})
UNCONVERTIBLE_SCHEMA: Final = pl.Schema({"column": pl.String, "value": pl.String, "rows": pl.Int64})

_CONTRACT_COLUMNS: Final[tuple[str, ...]] = tuple(WORKBOOK_COLUMNS.values())
_PRODUCT_CELL: Final = "product"  # the contract's Product column; kept as product_raw
_DROP: Final = "_drop_reason"
_ROW: Final = "__syno_source_row__"  # a name no workbook header will take


class SheetNameError(ValueError):
    """The sheet is not a contract sheet ('2024', '2024-C2', ...), so it has no kind or year."""


@dataclass(frozen=True)
class CleanResult:
    """One cleaned sheet, or a workbook (its sheets together).

    lines:         raw.sales_lines rows, columns and dtypes as SALES_LINES_SCHEMA.
    dropped:       reason ('blank', 'subtotal', 'repeated_header') -> rows dropped for it.
    unmapped:      field ('country' | 'currency' | 'product'), value, rows: each distinct unmapped value.
    unconvertible: column (canonical name), value (the cell as text), rows: cells that became null.
    """

    lines: pl.DataFrame
    dropped: dict[str, int]
    unmapped: pl.DataFrame
    unconvertible: pl.DataFrame


def _source(name: str) -> str:
    return f"_src_{name}"


def clean_sales(
    sheet: pl.LazyFrame | pl.DataFrame, *, sheet_name: str, snapshot_id: str, reference: Reference
) -> CleanResult:
    """Clean one sheet into raw.sales_lines rows, with what was dropped, unmapped and unconvertible."""
    kind = sheet_kind(sheet_name)
    if kind is None:
        raise SheetNameError(f"sheet {sheet_name!r} is not a contract sheet (expected '2024' or '2024-C2')")
    year, kind_name = kind
    frame = sheet.lazy()
    schema = frame.collect_schema()

    # Which input column feeds each contract column (the first one wins); the rest are extras.
    sources: dict[str, str] = {}
    extras: dict[str, pl.Expr] = {}
    for header, dtype in schema.items():
        canonical = canonical_column(header)
        if canonical is not None and canonical not in sources:
            sources[canonical] = header
        else:
            key = " ".join(header.split()) or header
            extras[header if key in extras else key] = as_text(pl.col(header), dtype)

    # Stage 1: text cells cleaned; cells to convert kept in their own dtype as _src_<name>.
    targets = {name: SALES_LINES_SCHEMA[name] for name in _CONTRACT_COLUMNS if name != _PRODUCT_CELL}
    source_dtypes: dict[str, pl.DataType] = {}
    stage_one: list[pl.Expr] = [pl.col(_ROW).cast(pl.Int32).alias("source_row")]
    for name in _CONTRACT_COLUMNS:
        dtype = schema[sources[name]] if name in sources else pl.Null()
        cell = pl.col(sources[name]) if name in sources else pl.lit(None)
        if name == _PRODUCT_CELL:
            stage_one.append(as_text(cell, dtype).alias("product_raw"))
        elif targets[name] == pl.String:
            stage_one.append(as_text(cell, dtype).alias(name))
        else:
            source_dtypes[name] = pl.String() if dtype == pl.String else dtype
            # A number or date has no inner spaces to collapse: trimming is enough (and cheaper).
            stage_one.append((clean_cell(cell) if dtype == pl.String else cell).alias(_source(name)))
    stage_one.append(extras_json(extras).alias("extras"))
    staged = frame.with_row_index(_ROW, offset=1).select(stage_one)

    # Stage 2: drop reason, conversions and lookups; product classification joined per distinct product.
    invoice_date_dtype = source_dtypes["invoice_date"]
    countries = reference.countries.select(match_key(pl.col("country")), "region")
    rates = reference.exchange_rates
    currency = pl.col("currency").str.to_uppercase()
    rate = currency.replace_strict(rates["currency"], rates["rate_to_usd"], default=None, return_dtype=pl.Float64)
    # The country cell is already trimmed and collapsed, so lower-casing it gives its match_key.
    region = (
        pl.col("country")
        .str.to_lowercase()
        .replace_strict(countries["country"], countries["region"], default=None, return_dtype=pl.String)
    )
    contract_cells = [
        pl.col("product_raw" if name == _PRODUCT_CELL else (_source(name) if name in source_dtypes else name))
        for name in _CONTRACT_COLUMNS
    ]
    converted = staged.with_columns(
        drop_reason(
            invoice_number=pl.col("invoice_number"),
            invoice_date_text=pl.col(_source("invoice_date")) if invoice_date_dtype == pl.String else None,
            customer=pl.col("customer"),
            product=pl.col("product_raw"),
            total_present=pl.col(_source("total_local")).is_not_null(),
            contract_cells=contract_cells,
        ).alias(_DROP),
        *(convert(pl.col(_source(name)), dtype, targets[name]).alias(name) for name, dtype in source_dtypes.items()),
        currency.alias("currency"),
        rate.alias("_rate"),
        region.alias("region"),
        pl.lit(snapshot_id, dtype=pl.String).alias("snapshot_id"),
        pl.lit(sheet_name, dtype=pl.String).alias("source_sheet"),
        pl.lit(kind_name, dtype=pl.String).alias("sheet_kind"),
        pl.lit(year, dtype=pl.Int32).alias("sheet_year"),
    )
    products = classify_products(staged.select("product_raw"), reference)
    classified = converted.join(
        products, on="product_raw", how="left", nulls_equal=True, maintain_order="left"
    ).with_columns(
        (pl.col("total_local") * pl.col("_rate")).alias("revenue_usd"),
        pl.col("region").is_null().alias("is_country_unmapped"),
        pl.col("_rate").is_null().alias("is_currency_unmapped"),
        pl.col("region").fill_null(UNMAPPED),
    )
    every_row = classified.collect()

    counts = every_row.get_column(_DROP).drop_nulls().value_counts()
    dropped = {reason: 0 for reason in DROP_REASONS} | dict(counts.iter_rows())
    kept = every_row.filter(pl.col(_DROP).is_null()) if counts.height else every_row
    return CleanResult(
        lines=kept.select(pl.col(name).cast(dtype) for name, dtype in SALES_LINES_SCHEMA.items()),
        dropped=dropped,
        unmapped=_unmapped(kept),
        unconvertible=_unconvertible(kept, source_dtypes),
    )


def clean_workbook(
    sheets: Mapping[str, pl.LazyFrame | pl.DataFrame], *, snapshot_id: str, reference: Reference
) -> CleanResult:
    """Clean every sheet (name -> frame) into one result: lines in sheet order, counts summed over sheets."""
    results = [
        clean_sales(sheet, sheet_name=name, snapshot_id=snapshot_id, reference=reference)
        for name, sheet in sheets.items()
    ]
    return CleanResult(
        lines=pl.concat([result.lines for result in results]) if results else SALES_LINES_SCHEMA.to_frame(),
        dropped={reason: sum(result.dropped[reason] for result in results) for reason in DROP_REASONS},
        unmapped=_summed([result.unmapped for result in results], "field", UNMAPPED_SCHEMA),
        unconvertible=_summed([result.unconvertible for result in results], "column", UNCONVERTIBLE_SCHEMA),
    )


def _unmapped(kept: pl.DataFrame) -> pl.DataFrame:
    """Each distinct unmapped country (as written), currency (upper-case) and product (normalised)."""
    fields = {
        "country": "is_country_unmapped",
        "currency": "is_currency_unmapped",
        "product": "is_product_unmapped",
    }
    parts = [
        kept.lazy()
        .filter(pl.col(flag))
        .group_by(pl.col(field).alias("value"))
        .agg(pl.len().alias("rows"))
        .select(pl.lit(field).alias("field"), "value", "rows")
        for field, flag in fields.items()
    ]
    return _counts(parts, "field", UNMAPPED_SCHEMA)


def _unconvertible(kept: pl.DataFrame, source_dtypes: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Each distinct cell that had a value but could not be converted, per canonical column."""
    parts = [
        kept.lazy()
        .filter(pl.col(_source(name)).is_not_null() & pl.col(name).is_null())
        .group_by(as_text(pl.col(_source(name)), dtype).alias("value"))
        .agg(pl.len().alias("rows"))
        .select(pl.lit(name).alias("column"), "value", "rows")
        for name, dtype in source_dtypes.items()
        if dtype != pl.Null  # a missing or empty column has nothing to convert
    ]
    return _counts(parts, "column", UNCONVERTIBLE_SCHEMA)


def _counts(parts: list[pl.LazyFrame], key: str, schema: pl.Schema) -> pl.DataFrame:
    """Concatenated counts, most frequent first within each key, with the given schema."""
    if not parts:
        return schema.to_frame()
    return (
        pl.concat(parts)
        .select(pl.col(name).cast(dtype) for name, dtype in schema.items())
        .sort([key, "rows", "value"], descending=[False, True, False], nulls_last=True)
        .collect()
    )


def _summed(counts: list[pl.DataFrame], key: str, schema: pl.Schema) -> pl.DataFrame:
    """Counts of several sheets as one: rows added up per (key, value)."""
    if not counts:
        return schema.to_frame()
    return _counts([pl.concat(counts).lazy().group_by(key, "value").agg(pl.col("rows").sum())], key, schema)
