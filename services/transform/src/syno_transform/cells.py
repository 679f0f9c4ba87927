"""One cell of a sheet, whatever dtype the reader inferred: cleaned text, numbers, dates, and the
extra cells (outside the contract) kept as one JSON object.

Pure polars expressions. Each column is converted according to its dtype (read from the schema,
not row by row). Nothing is guessed: a value that cannot be converted becomes null (and the
cleaning counts it).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from datetime import date, time
from typing import Final

import polars as pl

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
