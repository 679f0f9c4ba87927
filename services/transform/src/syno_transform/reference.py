"""Reference data (DESIGN.md section 4): the five mapping tables, loaded, checked and versioned.

The tables are data, not code: a new country, currency, product rule or C2 keyword is a new
CSV row and needs no code change. Each file is versioned by the sha256 of its bytes (the shared
``syno_shared.fingerprint``), recorded with every run. Frames use the column names of the ``ref.*``
tables (the transform's migrations).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from syno_shared.fingerprint import bytes_sha256

COUNTRIES_FILE: Final = "Mapped_Countries_with_Regions.csv"
EXCHANGE_RATES_FILE: Final = "exchange_rates.csv"
DEVICE_TO_BAY_FILE: Final = "device_to_bay.csv"
PRODUCT_RULES_FILE: Final = "product_rules.csv"
C2_KEYWORDS_FILE: Final = "c2_keywords.csv"

MAPPING_FILES: Final[tuple[str, ...]] = (
    COUNTRIES_FILE,
    EXCHANGE_RATES_FILE,
    DEVICE_TO_BAY_FILE,
    PRODUCT_RULES_FILE,
    C2_KEYWORDS_FILE,
)

RULE_STAGES: Final[tuple[str, ...]] = ("type", "sub_cat")
C2_FIELDS: Final[tuple[str, ...]] = ("service_family", "capacity", "plan")

# Columns each file must have (headers matched trimmed and case-insensitively); extra columns are ignored.
_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    COUNTRIES_FILE: ("country", "region"),
    EXCHANGE_RATES_FILE: ("currency", "rate_to_usd"),
    DEVICE_TO_BAY_FILE: ("product", "bays"),
    PRODUCT_RULES_FILE: ("stage", "order", "when_type", "pattern", "and_pattern", "type", "sub_cat"),
    C2_KEYWORDS_FILE: ("field", "order", "keyword", "value"),
}

_LINE: Final = "_line"  # 1-based line in the file (the header is line 1), for error messages


class ReferenceDataError(ValueError):
    """A mapping table is missing, unreadable or inconsistent; the message names the file and the problem."""


@dataclass(frozen=True)
class Reference:
    """The mapping tables as polars frames, with the content hash of each file.

    countries:      country (as written, trimmed), region; one row per case-insensitive country.
    exchange_rates: currency (upper-case), rate_to_usd.
    device_to_bay:  product (as written, trimmed), bays.
    product_rules:  stage, order, when_type, pattern, and_pattern, type, sub_cat; sorted by stage and order.
    c2_keywords:    field, order, keyword, value; sorted by field and order.
    versions:       file name -> sha256 of the file's bytes.
    """

    countries: pl.DataFrame
    exchange_rates: pl.DataFrame
    device_to_bay: pl.DataFrame
    product_rules: pl.DataFrame
    c2_keywords: pl.DataFrame
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def row_counts(self) -> dict[str, int]:
        """File name -> rows loaded from it (for ref.mapping_versions)."""
        return {
            COUNTRIES_FILE: self.countries.height,
            EXCHANGE_RATES_FILE: self.exchange_rates.height,
            DEVICE_TO_BAY_FILE: self.device_to_bay.height,
            PRODUCT_RULES_FILE: self.product_rules.height,
            C2_KEYWORDS_FILE: self.c2_keywords.height,
        }


def match_key(text: pl.Expr) -> pl.Expr:
    """The key two names are matched on: trimmed, inner whitespace collapsed, lower-cased."""
    return text.str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()


def load_reference(mapping_dir: Path) -> Reference:
    """Read, check and version the five mapping tables of ``mapping_dir``.

    Raises ReferenceDataError naming the file and what is wrong with it.
    """
    frames: dict[str, pl.DataFrame] = {}
    versions: dict[str, str] = {}
    for file_name in MAPPING_FILES:
        path = mapping_dir / file_name
        data = _read_bytes(path)
        frames[file_name] = _parse_csv(file_name, data)
        versions[file_name] = bytes_sha256(data)  # the version of exactly the bytes parsed
    return Reference(
        countries=_countries(frames[COUNTRIES_FILE]),
        exchange_rates=_exchange_rates(frames[EXCHANGE_RATES_FILE]),
        device_to_bay=_device_to_bay(frames[DEVICE_TO_BAY_FILE]),
        product_rules=_product_rules(frames[PRODUCT_RULES_FILE]),
        c2_keywords=_c2_keywords(frames[C2_KEYWORDS_FILE]),
        versions=versions,
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ReferenceDataError(f"{path.name}: mapping table not found at {path}") from None
    except OSError as error:
        raise ReferenceDataError(f"{path.name}: cannot read {path}: {error}") from error


def _parse_csv(file_name: str, data: bytes) -> pl.DataFrame:
    """All cells as trimmed strings (blank -> null), blank rows dropped, the expected columns only.

    Python's csv reader is used (the files are small) because it tolerates what hand-edited files
    hold: spaces around quoted fields, CRLF, a missing trailing empty field.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ReferenceDataError(f"{file_name}: not UTF-8 text ({error}); save it as CSV UTF-8") from None
    reader = csv.reader(io.StringIO(text, newline=""), skipinitialspace=True, strict=False)
    try:
        header = next(reader, None)
        records = [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise ReferenceDataError(f"{file_name}: not a readable CSV file: {error}") from None
    if header is None:
        raise ReferenceDataError(f"{file_name}: the file is empty (no header row)")

    positions: dict[str, int] = {}
    for position, name in enumerate(header):
        positions.setdefault(name.strip().casefold(), position)
    expected = _COLUMNS[file_name]
    missing = [name for name in expected if name not in positions]
    if missing:
        raise ReferenceDataError(
            f"{file_name}: missing column(s) {', '.join(missing)} "
            f"(expected {', '.join(expected)}; found {', '.join(repr(h) for h in header)})"
        )
    too_long = [line for line, row in records if len(row) > len(header) and any(c.strip() for c in row[len(header) :])]
    if too_long:
        raise ReferenceDataError(
            f"{file_name}: more cells than header columns on line(s) {', '.join(map(str, too_long[:10]))}"
        )
    columns: dict[str, list[object]] = {_LINE: [line for line, _ in records]}
    for name in expected:
        position = positions[name]
        columns[name] = [row[position] if position < len(row) else None for _, row in records]
    schema = {_LINE: pl.Int64, **dict.fromkeys(expected, pl.String)}
    return (
        pl.DataFrame(columns, schema=schema)
        .lazy()
        .with_columns(pl.col(name).str.strip_chars() for name in expected)
        .with_columns(pl.when(pl.col(name) != "").then(pl.col(name)).alias(name) for name in expected)
        .filter(pl.any_horizontal(pl.col(name).is_not_null() for name in expected))
        .collect()
    )


def _require(file_name: str, frame: pl.DataFrame, columns: tuple[str, ...]) -> None:
    """Every listed column is filled on every row."""
    for column in columns:
        blank = frame.filter(pl.col(column).is_null())
        if blank.height:
            raise ReferenceDataError(f"{file_name}: column {column} is blank on line(s) {_lines(blank)}")


def _to_number(file_name: str, frame: pl.DataFrame, column: str, dtype: pl.DataType) -> pl.DataFrame:
    """Cast a text column to a number, naming the lines whose value is not one."""
    as_float = pl.col(column).cast(pl.Float64, strict=False)
    valid = as_float.is_finite()
    if dtype.is_integer():
        valid = valid & (as_float == as_float.round(0))
    bad = frame.filter(pl.col(column).is_not_null() & ~valid.fill_null(value=False))
    if bad.height:
        values = ", ".join(repr(v) for v in bad.get_column(column).head(5).to_list())
        kind = "an integer" if dtype.is_integer() else "a number"
        raise ReferenceDataError(f"{file_name}: column {column} is not {kind} on line(s) {_lines(bad)}: {values}")
    return frame.with_columns(as_float.cast(dtype))


def _lines(frame: pl.DataFrame) -> str:
    lines = frame.get_column(_LINE).head(10).to_list()
    more = f" and {frame.height - len(lines)} more" if frame.height > len(lines) else ""
    return ", ".join(str(line) for line in lines) + more


def _unique_by(file_name: str, frame: pl.DataFrame, key: pl.Expr, value: str, what: str) -> pl.DataFrame:
    """Keep the first of repeated keys; a key given twice with different values is an error."""
    keyed = frame.with_columns(key.alias("_key"))
    conflicts = (
        keyed.group_by("_key", maintain_order=True)
        .agg(pl.col(value).n_unique().alias("_values"), pl.col(_LINE))
        .filter(pl.col("_values") > 1)
    )
    if conflicts.height:
        key, lines = conflicts.select(
            "_key", pl.col(_LINE).list.eval(pl.element().cast(pl.String)).list.join(", ")
        ).row(0)
        raise ReferenceDataError(
            f"{file_name}: {what} {key!r} is given twice with different {value} (lines {lines}); keep one"
        )
    return keyed.unique(subset="_key", keep="first", maintain_order=True).drop("_key")


def _countries(frame: pl.DataFrame) -> pl.DataFrame:
    _require(COUNTRIES_FILE, frame, ("country", "region"))
    frame = _unique_by(COUNTRIES_FILE, frame, match_key(pl.col("country")), "region", "country")
    return frame.select("country", "region")


def _exchange_rates(frame: pl.DataFrame) -> pl.DataFrame:
    _require(EXCHANGE_RATES_FILE, frame, ("currency", "rate_to_usd"))
    frame = _to_number(EXCHANGE_RATES_FILE, frame, "rate_to_usd", pl.Float64())
    not_positive = frame.filter(pl.col("rate_to_usd") <= 0)
    if not_positive.height:
        raise ReferenceDataError(f"{EXCHANGE_RATES_FILE}: rate_to_usd must be above 0 (line(s) {_lines(not_positive)})")
    frame = frame.with_columns(pl.col("currency").str.to_uppercase())
    frame = _unique_by(EXCHANGE_RATES_FILE, frame, pl.col("currency"), "rate_to_usd", "currency")
    return frame.select("currency", "rate_to_usd")


def _device_to_bay(frame: pl.DataFrame) -> pl.DataFrame:
    _require(DEVICE_TO_BAY_FILE, frame, ("product", "bays"))
    frame = _to_number(DEVICE_TO_BAY_FILE, frame, "bays", pl.Int32())
    frame = _unique_by(DEVICE_TO_BAY_FILE, frame, pl.col("product").str.to_uppercase(), "bays", "product")
    return frame.select("product", "bays")


def _product_rules(frame: pl.DataFrame) -> pl.DataFrame:
    file_name = PRODUCT_RULES_FILE
    _require(file_name, frame, ("stage", "order", "pattern"))
    frame = _to_number(file_name, frame.with_columns(pl.col("stage").str.to_lowercase()), "order", pl.Int32())
    _check_allowed(file_name, frame, "stage", RULE_STAGES)
    _require(file_name, frame.filter(pl.col("stage") == "type"), ("type",))
    _require(file_name, frame.filter(pl.col("stage") == "sub_cat"), ("when_type", "sub_cat"))
    _check_unique(file_name, frame, ["stage", "order"])
    for column in ("pattern", "and_pattern"):
        for line, pattern in frame.select(_LINE, column).drop_nulls().iter_rows():
            _check_regex(file_name, line, column, pattern)
    return frame.sort("stage", "order", descending=[True, False]).select(_COLUMNS[file_name])


def _c2_keywords(frame: pl.DataFrame) -> pl.DataFrame:
    file_name = C2_KEYWORDS_FILE
    _require(file_name, frame, ("field", "order", "keyword", "value"))
    frame = _to_number(file_name, frame.with_columns(pl.col("field").str.to_lowercase()), "order", pl.Int32())
    _check_allowed(file_name, frame, "field", C2_FIELDS)
    _check_unique(file_name, frame, ["field", "order"])
    return frame.sort("field", "order").select(_COLUMNS[file_name])


def _check_allowed(file_name: str, frame: pl.DataFrame, column: str, allowed: tuple[str, ...]) -> None:
    bad = frame.filter(~pl.col(column).is_in(allowed))
    if bad.height:
        values = ", ".join(repr(v) for v in bad.get_column(column).unique(maintain_order=True).to_list())
        raise ReferenceDataError(
            f"{file_name}: column {column} must be one of {', '.join(allowed)}; found {values} on line(s) {_lines(bad)}"
        )


def _check_unique(file_name: str, frame: pl.DataFrame, keys: list[str]) -> None:
    repeated = frame.filter(pl.len().over(keys) > 1)
    if repeated.height:
        raise ReferenceDataError(
            f"{file_name}: ({', '.join(keys)}) must be unique; repeated on line(s) {_lines(repeated)}"
        )


def _check_regex(file_name: str, line: int, column: str, pattern: str) -> None:
    """The pattern compiles with the regex engine that will run it (polars/Rust regex, not Python re)."""
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.ComputeError as error:
        first_line = str(error).strip().splitlines()
        detail = " ".join(part.strip() for part in first_line[:6] if part.strip())
        raise ReferenceDataError(
            f"{file_name}: line {line}: {column} {pattern!r} is not a valid regular expression ({detail})"
        ) from None
