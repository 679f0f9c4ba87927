"""Clean and classify one sheet of a sale-out workbook into raw.sales_lines rows (DESIGN.md section 4).

Pure functions over polars: every rule is an expression, the product rules and C2 keywords are
data turned into expressions, and a whole sheet is one lazy query collected once.

The input is a sheet as ingestion wrote it: the original headers and whatever dtype the reader
inferred per column. Each column is converted according to its dtype (read from the schema, not
row by row). Nothing is guessed: a value that cannot be converted becomes null and is counted,
and an unknown country, currency or product keeps its row and is flagged and counted.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Final

import polars as pl

from syno_shared.contract import WORKBOOK_COLUMNS, canonical_column, sheet_kind
from syno_transform.reference import Reference, match_key
from syno_transform.schema import SALES_LINES_SCHEMA

UNMAPPED: Final = "UNMAPPED"
UNKNOWN: Final = "UNKNOWN"
C2_PRODUCT_TYPES: Final[tuple[str, ...]] = ("C2-SAAS", "C2-HYBRID")
DROP_REASONS: Final[tuple[str, ...]] = ("blank", "subtotal", "repeated_header")

UNMAPPED_SCHEMA: Final = pl.Schema({"field": pl.String, "value": pl.String, "rows": pl.Int64})
UNCONVERTIBLE_SCHEMA: Final = pl.Schema({"column": pl.String, "value": pl.String, "rows": pl.Int64})

# Cells that mean "no value" (after trimming), in any letter case.
_NULL_WORDS: Final = ("null", "n/a", "#n/a")
NULL_TOKENS: Final[tuple[str, ...]] = (
    "",
    "-",
    *sorted(
        {"".join(chars) for word in _NULL_WORDS for chars in itertools.product(*({c.lower(), c.upper()} for c in word))}
    ),
)

# Text dates: an optional time after the date is ignored. Slashes are day-first unless the year leads.
DATE_FORMATS: Final[tuple[str, ...]] = ("%Y-%m-%d", "%d/%m/%Y", "%Y/%m/%d")
_TIME_SUFFIX: Final = r"[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$"
_EXCEL_EPOCH: Final = date(1899, 12, 30)
_UNIX_EPOCH_SERIAL: Final = (date(1970, 1, 1) - _EXCEL_EPOCH).days  # 25569
MIN_DATE: Final = date(1900, 1, 1)
MAX_DATE: Final = date(9999, 12, 31)
_THOUSANDS: Final = r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$"
_SUBTOTAL: Final = r"(?i)^((sub|grand)[ -]?)?total\b"
_TIER: Final = r"^SVR-RM-.*-(T\d)$"

_CONTRACT_COLUMNS: Final[tuple[str, ...]] = tuple(WORKBOOK_COLUMNS.values())
_PRODUCT_CELL: Final = "product"  # the contract's Product column; kept as product_raw
_DROP: Final = "_drop_reason"
_ROW: Final = "__syno_source_row__"  # a name no workbook header will take


class SheetNameError(ValueError):
    """The sheet is not a contract sheet ('2024', '2024-C2', ...), so it has no kind or year."""


@dataclass(frozen=True)
class CleanResult:
    """One cleaned sheet.

    lines:         raw.sales_lines rows, columns and dtypes as SALES_LINES_SCHEMA.
    dropped:       reason ('blank', 'subtotal', 'repeated_header') -> rows dropped for it.
    unmapped:      field ('country' | 'currency' | 'product'), value, rows: each distinct unmapped value.
    unconvertible: column (canonical name), value (the cell as text), rows: cells that became null.
    """

    lines: pl.DataFrame
    dropped: dict[str, int]
    unmapped: pl.DataFrame
    unconvertible: pl.DataFrame


# --- cells -------------------------------------------------------------------------------------


def clean_cell(text: pl.Expr) -> pl.Expr:
    """Trim, and turn the null tokens ('NULL', 'n/a', '-', '', ...) into null."""
    trimmed = text.str.strip_chars()
    return pl.when(~trimmed.is_in(NULL_TOKENS)).then(trimmed)


def clean_text(text: pl.Expr) -> pl.Expr:
    """clean_cell, with inner runs of whitespace (tabs, newlines, no-break spaces) collapsed to one space."""
    # Only runs of 2+ whitespace or a lone tab/newline/no-break space need rewriting: cheaper than \s+.
    return clean_cell(text.str.replace_all(r"\s{2,}|[^\S ]", " "))


def as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Any cell as cleaned text: integral floats without '.0', midnight datetimes as dates."""
    if dtype == pl.String:
        return clean_text(column)
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.String)
    if dtype.is_float():
        whole = (column == column.round(0)) & (column.abs() < 1e15)
        return (
            pl.when(column.is_nan())
            .then(None)
            .when(whole)
            .then(column.cast(pl.Int64).cast(pl.String))
            .otherwise(column.cast(pl.String))
        )
    if dtype.is_integer() or dtype == pl.Boolean:
        return column.cast(pl.String)
    if dtype == pl.Date:
        return column.dt.strftime("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        return (
            pl.when(column.dt.time() == time(0))
            .then(column.dt.strftime("%Y-%m-%d"))
            .otherwise(column.dt.strftime("%Y-%m-%d %H:%M:%S"))
        )
    return clean_text(column.cast(pl.String))


def parse_number(text: pl.Expr) -> pl.Expr:
    """Text -> Float64: '1,234.50' (comma thousands groups only), ' 3', '-2.5', '1e3'; else null."""
    plain = pl.when(text.str.contains(_THOUSANDS)).then(text.str.replace_all(",", "", literal=True))
    number = pl.coalesce(plain, text).cast(pl.Float64, strict=False)
    return pl.when(number.is_finite()).then(number)


def to_float(cell: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A cleaned cell of any dtype -> Float64."""
    if dtype.is_float():
        return cell.cast(pl.Float64).fill_nan(None)
    if dtype.is_integer():
        return cell.cast(pl.Float64)
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.Float64)
    return parse_number(cell if dtype == pl.String else as_text(cell, dtype))


def to_integer(cell: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A cleaned cell of any dtype -> Int64; a non-integer value (2.5) is null."""
    if dtype.is_integer():
        return cell.cast(pl.Int64, strict=False)
    number = to_float(cell, dtype)
    whole = (number == number.round(0)) & (number.abs() < 2.0**63)
    return pl.when(whole).then(number.cast(pl.Int64, strict=False))


def excel_serial_to_date(serial: pl.Expr) -> pl.Expr:
    """Excel serial day number (days since 1899-12-30, fraction = time of day) -> Date."""
    days = serial.floor() - _UNIX_EPOCH_SERIAL
    in_range = days.is_between((MIN_DATE - date(1970, 1, 1)).days, (MAX_DATE - date(1970, 1, 1)).days)
    return pl.when(in_range).then(days.cast(pl.Int32, strict=False).cast(pl.Date))


def to_date(cell: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A cleaned cell of any dtype -> Date: real dates, Excel serials, or text in DATE_FORMATS."""
    if dtype == pl.Date:
        parsed = cell
    elif isinstance(dtype, pl.Datetime):
        parsed = cell.dt.date()
    elif dtype.is_numeric():
        parsed = excel_serial_to_date(cell.cast(pl.Float64))
    elif dtype == pl.Null:
        return pl.lit(None, dtype=pl.Date)
    else:
        text = cell if dtype == pl.String else as_text(cell, dtype)
        day = text.str.replace(_TIME_SUFFIX, "")
        parsed = pl.coalesce(
            *(day.str.to_date(fmt, strict=False) for fmt in DATE_FORMATS),
            excel_serial_to_date(parse_number(text)),
        )
    return pl.when(parsed.is_between(MIN_DATE, MAX_DATE)).then(parsed)


def convert(cell: pl.Expr, dtype: pl.DataType, target: pl.DataType) -> pl.Expr:
    """A cleaned cell of any dtype -> the target dtype (Float64, Int64 or Date)."""
    if target == pl.Date:
        return to_date(cell, dtype)
    if target == pl.Int64:
        return to_integer(cell, dtype)
    return to_float(cell, dtype)


# --- rows --------------------------------------------------------------------------------------


def drop_reason(
    invoice_number: pl.Expr,
    invoice_date_text: pl.Expr | None,
    customer: pl.Expr,
    product: pl.Expr,
    total_present: pl.Expr,
    contract_cells: Iterable[pl.Expr],
) -> pl.Expr:
    """'blank', 'repeated_header' or 'subtotal' for a row to drop (first that applies), else null."""
    blank = pl.all_horizontal(cell.is_null() for cell in contract_cells)
    repeated_header = invoice_number.str.contains(r"(?i)^PI$")
    if invoice_date_text is not None:
        repeated_header = repeated_header | invoice_date_text.str.contains(r"(?i)^Inv\s*Date$")
    subtotal = (
        customer.str.contains(_SUBTOTAL)
        | invoice_number.str.contains(_SUBTOTAL)
        | (total_present & product.is_null() & customer.is_null() & invoice_number.is_null())
    )
    return (
        pl.when(blank)
        .then(pl.lit("blank"))
        .when(repeated_header.fill_null(value=False))
        .then(pl.lit("repeated_header"))
        .when(subtotal.fill_null(value=False))
        .then(pl.lit("subtotal"))
    )


def extras_json(cells: Mapping[str, pl.Expr]) -> pl.Expr:
    """{header: text} of the non-null extra cells as a JSON object, null when there is none."""
    if not cells:
        return pl.lit(None, dtype=pl.String)
    members = [
        pl.when(text.is_not_null()).then(
            pl.lit(json.dumps(header, ensure_ascii=False) + ":")
            + pl.struct(text.alias("v")).struct.json_encode().str.strip_prefix('{"v":').str.strip_suffix("}")
        )
        for header, text in cells.items()
    ]
    body = pl.concat_str(members, separator=",", ignore_nulls=True)
    return pl.when(body != "").then(pl.lit("{") + body + pl.lit("}"))


# --- products ----------------------------------------------------------------------------------


def normalise_product(product_raw: pl.Expr) -> pl.Expr:
    """Upper-cased, leading '(...)' tag dropped, trimmed; null when nothing is left."""
    name = product_raw.str.replace(r"^\([^)]*\)", "").str.strip_chars().str.to_uppercase()
    return pl.when(name != "").then(name)


def product_tag(product_raw: pl.Expr) -> pl.Expr:
    """The text of a leading '(...)' tag, trimmed, or null."""
    tag = product_raw.str.extract(r"^\(([^)]*)\)", 1).str.strip_chars()
    return pl.when(tag != "").then(tag)


def rule_matches(product: pl.Expr, pattern: str, and_pattern: str | None) -> pl.Expr:
    """A product_rules row matches when its pattern (and its and_pattern, if any) is found."""
    matched = product.str.contains(f"(?i){pattern}")
    if and_pattern:
        matched = matched & product.str.contains(f"(?i){and_pattern}")
    return matched


def product_type(product: pl.Expr, rules: pl.DataFrame) -> pl.Expr:
    """The type of the first 'type' rule, in order, that matches; UNMAPPED when none (or no product)."""
    type_rules = rules.filter(pl.col("stage") == "type").sort("order")
    return pl.coalesce(
        *(
            pl.when(rule_matches(product, pattern, and_pattern)).then(pl.lit(type_))
            for pattern, and_pattern, type_ in type_rules.select("pattern", "and_pattern", "type").iter_rows()
        ),
        pl.lit(UNMAPPED),
    )


def rule_sub_cat(product: pl.Expr, type_: pl.Expr, rules: pl.DataFrame) -> pl.Expr:
    """The sub_cat of the first 'sub_cat' rule, in order, for this type that matches; else UNMAPPED."""
    sub_cat_rules = rules.filter(pl.col("stage") == "sub_cat").sort("order")
    columns = ("when_type", "pattern", "and_pattern", "sub_cat")
    return pl.coalesce(
        *(
            pl.when((type_ == when_type) & rule_matches(product, pattern, and_pattern)).then(pl.lit(sub_cat))
            for when_type, pattern, and_pattern, sub_cat in sub_cat_rules.select(columns).iter_rows()
        ),
        pl.lit(UNMAPPED),
    )


def c2_field(product: pl.Expr, keywords: pl.DataFrame, field: str) -> pl.Expr:
    """The value of the first keyword of `field`, in order, found in the product; else UNKNOWN."""
    rows = keywords.filter(pl.col("field") == field).sort("order").select("keyword", "value").iter_rows()
    return pl.coalesce(
        *(pl.when(product.str.contains(keyword.upper(), literal=True)).then(pl.lit(value)) for keyword, value in rows),
        pl.lit(UNKNOWN),
    )


def classify_products(product_raw: pl.LazyFrame, reference: Reference) -> pl.LazyFrame:
    """One row per distinct product_raw: product, product_tag, type, sub_cat, tier, is_c2, C2 fields, flag."""
    product = pl.col("product")
    # C2 by product type, not by sheet: 'C2 Surveillance' on a C2 sheet keeps its own SVS-C2-* sub-category
    # and is not a C2 line. This is the one place that decides it; dbt reads is_c2 from raw.sales_lines.
    is_c2 = pl.col("is_c2")
    c2_fields = {
        "c2_service_family": "service_family",
        "c2_capacity": "capacity",
        "c2_plan": "plan",
    }
    c2_sub_cat = pl.concat_str(pl.lit("C2"), *(pl.col(name) for name in c2_fields), separator="-")
    return (
        product_raw.unique()
        .with_columns(
            normalise_product(pl.col("product_raw")).alias("product"),
            product_tag(pl.col("product_raw")).alias("product_tag"),
        )
        .with_columns(product_type(product, reference.product_rules).alias("product_type"))
        .with_columns(pl.col("product_type").is_in(C2_PRODUCT_TYPES).alias("is_c2"))
        .with_columns(
            rule_sub_cat(product, pl.col("product_type"), reference.product_rules).alias("sub_cat"),
            *(
                pl.when(is_c2).then(c2_field(product, reference.c2_keywords, field)).alias(name)
                for name, field in c2_fields.items()
            ),
        )
        .with_columns(
            pl.when(product.is_null())
            .then(pl.lit(UNMAPPED))
            .when(is_c2)
            .then(c2_sub_cat)
            .otherwise(pl.col("sub_cat"))
            .alias("sub_cat")
        )
        .with_columns(
            pl.col("sub_cat").str.extract(_TIER, 1).alias("tier"),
            ((pl.col("product_type") == UNMAPPED) | (pl.col("sub_cat") == UNMAPPED)).alias("is_product_unmapped"),
        )
    )


# --- the sheet ---------------------------------------------------------------------------------


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
