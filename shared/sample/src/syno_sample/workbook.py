"""Sample sale-out workbooks: a messy ``.xlsx`` in the real format, and the truth behind it.

``write_workbook`` writes what the distributor's export looks like (DESIGN.md section 4):
one sheet per year of hardware and licence sales (``2023``) and one per year of C2
sales (``2023-C2``), the contract's columns in order, and the known messiness in small
shares. ``generate_sales`` returns the ground truth: one clean row per real sales line,
with what a correct cleaner must derive from the workbook (trimmed names, the product
without its ``(...)`` tag, numbers parsed from text, the classification from
``product_rules.csv``, revenue in USD).

Everything is drawn from ``random.Random`` streams seeded by ``SampleSpec.seed`` (one
stream per sheet and purpose), so a seed gives the same truth frame and the same
workbook bytes.

This module is the public API. The pieces live by concept: ``catalogue`` (the products),
``customers`` (who buys, where, in which currency), ``lines`` (the real lines of each sheet and
where they sit among the messy rows), ``truth`` (the true rows), ``cells`` (the messy cells, written
with xlsxwriter), ``mapping`` (what is read from the mapping tables) and ``streams`` (the seeded
random streams).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl

from syno_sample.catalogue import CATALOGUE, CatalogueEntry
from syno_sample.cells import HEADER, Cell, write_xlsx
from syno_sample.customers import draw_customers
from syno_sample.lines import (
    BLANK_ROW,
    HEADER_ROW,
    SUBTOTAL_ROW,
    Sheet,
    SubtotalStyle,
    allocate,
    day_weight,
    days_of,
    layout_rows,
    sheet_lines,
)
from syno_sample.mapping import (
    COUNTRY_FILE,
    RATES_FILE,
    UNMAPPED_COUNTRY,
    UNMAPPED_CURRENCY,
    UNMAPPED_REGION,
    read_rates,
    read_regions,
)
from syno_sample.streams import stream
from syno_sample.truth import TRUTH_COLUMNS, truth_frame
from syno_shared.contract import SheetKind

# The public API; the catalogue, header, truth and mapping names are re-exported from their modules.
__all__ = [
    "CATALOGUE",
    "COUNTRY_FILE",
    "HEADER",
    "RATES_FILE",
    "TRUTH_COLUMNS",
    "UNMAPPED_COUNTRY",
    "UNMAPPED_CURRENCY",
    "UNMAPPED_REGION",
    "CatalogueEntry",
    "Cell",
    "SampleReport",
    "SampleSpec",
    "SheetCounts",
    "SubtotalStyle",
    "c2_sheet_name",
    "generate_sales",
    "hardware_sheet_name",
    "resolve_end_date",
    "write_workbook",
]


@dataclass(frozen=True)
class SampleSpec:
    """What to generate. Shares are probabilities per line (or per cell for messiness)."""

    years: tuple[int, ...] = (2023, 2024)
    rows_per_year: int = 100_000
    """Hardware lines per year on average: rows_per_year * len(years) lines in all, spread
    over the days by seasonality and trend (so the partial last year gets somewhat fewer)."""
    seed: int = 7
    c2_share: float = 0.1
    """C2 lines of a year, as a share of that year's hardware lines."""
    unmapped_share: float = 0.001
    """Share of lines with an unmapped currency (GBP), and separately an unmapped country."""
    mess_share: float = 0.01
    """Base share of each kind of messiness; 0 writes a tidy workbook (no blank, subtotal,
    repeated-header rows, no text numbers or dates, no tags or stray spaces, no NULL strings)."""
    return_share: float = 0.005
    growth: float = 0.15
    """Yearly growth of the number of lines."""
    end_date: date | None = None
    """Last day with data, in the final year; None: five to six weeks into its Q4."""

    def __post_init__(self) -> None:
        if not self.years or list(self.years) != sorted(set(self.years)):
            raise ValueError(f"years must be non-empty, ascending and unique, got {self.years}")
        if self.rows_per_year < 1:
            raise ValueError(f"rows_per_year must be positive, got {self.rows_per_year}")
        for name in ("c2_share", "unmapped_share", "mess_share", "return_share"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {share}")
        if self.end_date is not None and self.end_date.year != self.years[-1]:
            raise ValueError(f"end_date {self.end_date} is not in the final year {self.years[-1]}")


@dataclass(frozen=True)
class SheetCounts:
    """What one sheet holds: data rows after the header, and of those, what kind."""

    sheet: str
    data_rows: int
    lines: int
    blank_rows: int
    subtotal_rows: int
    header_rows: int


@dataclass(frozen=True, eq=False)
class SampleReport:
    """A written sample: where, the last day with data, what each sheet holds, and the truth."""

    path: Path
    end_date: date
    sheets: tuple[SheetCounts, ...]
    truth: pl.DataFrame


def hardware_sheet_name(year: int) -> str:
    return str(year)


def c2_sheet_name(year: int) -> str:
    return f"{year}-C2"


def resolve_end_date(spec: SampleSpec) -> date:
    """The last day with data: spec.end_date, or 35 to 42 days into the final year's Q4."""
    if spec.end_date is not None:
        return spec.end_date
    return date(spec.years[-1], 10, 1) + timedelta(days=stream(spec.seed, "end").randint(35, 42))


def generate_sales(spec: SampleSpec, mapping_dir: Path) -> pl.DataFrame:
    """The ground-truth lines, one row per real sales line, in workbook order.

    Columns (named and typed as in raw.sales_lines): source_sheet, source_row (1-based among the sheet's
    data rows after the header,
    messy rows included), invoice_number, invoice_date, ship_date, customer, country,
    region ('UNMAPPED' for a country not in the map), product (normalised, no tag),
    item_code, product_type, sub_cat, tier, c2_service_family, c2_capacity, c2_plan,
    quantity, currency, price, discount, tt_discount, total_local, revenue_usd (null for an
    unmapped currency), delivery_from, ship_to, comments.
    """
    return truth_frame(_plan(spec, mapping_dir), mapping_dir)


def write_workbook(path: Path, spec: SampleSpec, mapping_dir: Path) -> SampleReport:
    """Generate the sample and write it as a messy .xlsx at path."""
    sheets = _plan(spec, mapping_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed creation time keeps the file byte-identical for a seed.
    write_xlsx(path, sheets, seed=spec.seed, mess_share=spec.mess_share, created=datetime(spec.years[-1], 1, 1))
    counts = tuple(_counts(sheet) for sheet in sheets)
    return SampleReport(path, resolve_end_date(spec), counts, truth_frame(sheets, mapping_dir))


def _plan(spec: SampleSpec, mapping_dir: Path) -> list[Sheet]:
    regions = read_regions(mapping_dir)
    rates = read_rates(mapping_dir)
    customers = draw_customers(spec.seed, regions)
    end = resolve_end_date(spec)
    first_day = date(spec.years[0], 1, 1)
    year_days = [days_of(year, end) for year in spec.years]
    year_weights = [[day_weight(day, first_day, spec.growth) for day in days] for days in year_days]
    hardware_counts = allocate(spec.rows_per_year * len(spec.years), [sum(w) for w in year_weights])

    sheets: list[Sheet] = []
    for year, days, weights, n in zip(spec.years, year_days, year_weights, hardware_counts, strict=True):
        sheet_specs: tuple[tuple[SheetKind, str, int], ...] = (
            ("hardware", hardware_sheet_name(year), n),
            ("c2", c2_sheet_name(year), round(n * spec.c2_share)),
        )
        for kind, name, count in sheet_specs:
            lines = sheet_lines(
                name,
                kind,
                count,
                days,
                weights,
                customers,
                regions,
                rates,
                seed=spec.seed,
                unmapped_share=spec.unmapped_share,
                return_share=spec.return_share,
            )
            layout, subtotals = layout_rows(lines, stream(spec.seed, name, "layout"), spec.mess_share)
            sheets.append(Sheet(name, lines, layout, subtotals))
    return sheets


def _counts(sheet: Sheet) -> SheetCounts:
    return SheetCounts(
        sheet=sheet.name,
        data_rows=len(sheet.layout),
        lines=len(sheet.lines.invoice_number),
        blank_rows=sheet.layout.count(BLANK_ROW),
        subtotal_rows=sheet.layout.count(SUBTOTAL_ROW),
        header_rows=sheet.layout.count(HEADER_ROW),
    )
