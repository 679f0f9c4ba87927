"""The sample generator writes the real workbook format, messy, and a truth a cleaner can recover."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import fastexcel
import openpyxl
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from syno_sample.workbook import (
    TRUTH_COLUMNS,
    UNMAPPED_COUNTRY,
    UNMAPPED_CURRENCY,
    UNMAPPED_REGION,
    SampleReport,
    SampleSpec,
    generate_sales,
    resolve_end_date,
    write_workbook,
)
from syno_shared.contract import WORKBOOK_COLUMNS, sheet_kind

MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"
HEADER = list(WORKBOOK_COLUMNS)
SEED11_2K_SHA256 = "5dac856bd3871c797a2143ac3bc5318e608d95433f952ca782e1e9ca330dc9de"
SMALL = SampleSpec(years=(2023, 2024), rows_per_year=2_000, seed=3, unmapped_share=0.01)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> SampleReport:
    return write_workbook(tmp_path_factory.mktemp("sample") / "sample.xlsx", SMALL, MAPPING_DIR)


@pytest.fixture(scope="module")
def cells(written: SampleReport) -> dict[str, list[tuple[object, ...]]]:
    """Every sheet's data rows (after the header) as openpyxl reads the cells: types kept."""
    workbook = openpyxl.load_workbook(written.path, read_only=True)
    try:
        return {
            sheet.title: [tuple(row) for row in sheet.iter_rows(min_row=2, values_only=True)]
            for sheet in workbook.worksheets
        }
    finally:
        workbook.close()


# --------------------------------------------------------------------------- determinism, layout


def test_same_seed_gives_the_same_truth_and_the_same_workbook_bytes(tmp_path: Path) -> None:
    spec = SampleSpec(years=(2024,), rows_per_year=500, seed=5)
    first = write_workbook(tmp_path / "a.xlsx", spec, MAPPING_DIR)
    second = write_workbook(tmp_path / "b.xlsx", spec, MAPPING_DIR)
    assert_frame_equal(first.truth, second.truth)
    assert_frame_equal(generate_sales(spec, MAPPING_DIR), first.truth)
    assert (tmp_path / "a.xlsx").read_bytes() == (tmp_path / "b.xlsx").read_bytes()
    other = generate_sales(SampleSpec(years=(2024,), rows_per_year=500, seed=6), MAPPING_DIR)
    assert not other.equals(first.truth)


def test_a_seed_keeps_its_workbook_bytes(tmp_path: Path) -> None:
    """Pinned: the random streams are drawn in the same order as when this hash was recorded."""
    path = tmp_path / "seed11.xlsx"
    write_workbook(path, SampleSpec(rows_per_year=2_000, seed=11), MAPPING_DIR)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SEED11_2K_SHA256


def test_sheets_are_one_per_year_and_kind_with_the_contract_header(written: SampleReport) -> None:
    reader = fastexcel.read_excel(written.path)
    assert reader.sheet_names == ["2023", "2023-C2", "2024", "2024-C2"]
    assert [sheet_kind(name) for name in reader.sheet_names] == [
        (2023, "hardware"),
        (2023, "c2"),
        (2024, "hardware"),
        (2024, "c2"),
    ]
    for name in reader.sheet_names:
        assert reader.load_sheet_by_name(name, dtypes="string").to_polars().columns == HEADER
    assert written.truth.columns == list(TRUTH_COLUMNS)


def test_each_sheet_reads_back_with_its_data_rows(written: SampleReport) -> None:
    """fastexcel sees every data row (blank ones included); the report and the truth agree."""
    lines_per_sheet = dict(written.truth.group_by("source_sheet").len().iter_rows())
    for counts in written.sheets:
        frame = fastexcel.read_excel(written.path).load_sheet_by_name(counts.sheet, dtypes="string").to_polars()
        blank = frame.filter(pl.all_horizontal(pl.all().is_null())).height
        headers = frame.filter((pl.col("PI") == "PI") & (pl.col("Customer") == "Customer")).height
        subtotals = frame.filter((pl.col("Customer") == "Subtotal") | (pl.col("PI") == "TOTAL")).height
        assert (frame.height, blank, headers, subtotals) == (
            counts.data_rows,
            counts.blank_rows,
            counts.header_rows,
            counts.subtotal_rows,
        )
        assert counts.data_rows == counts.lines + counts.blank_rows + counts.header_rows + counts.subtotal_rows
        assert lines_per_sheet[counts.sheet] == counts.lines
    hardware = {c.sheet: c.lines for c in written.sheets if not c.sheet.endswith("C2")}
    c2 = {c.sheet.removesuffix("-C2"): c.lines for c in written.sheets if c.sheet.endswith("C2")}
    assert sum(hardware.values()) == 2 * SMALL.rows_per_year
    assert all(c2[year] == round(hardware[year] * SMALL.c2_share) for year in hardware)


# --------------------------------------------------------------------------- messiness and truth


def test_the_workbook_contains_each_kind_of_messiness(cells: dict[str, list[tuple[object, ...]]]) -> None:
    rows = [row for sheet in cells.values() for row in sheet]
    column = {name: [row[k] for row in rows] for k, name in enumerate(HEADER)}

    def kinds(name: str) -> Counter[str]:
        return Counter(type(value).__name__ for value in column[name])

    def stray_spaces(name: str) -> int:
        return sum(isinstance(v, str) and v != v.strip() for v in column[name])

    assert sum(all(v is None for v in row) for row in rows) > 0
    assert sum(tuple(row) == tuple(HEADER) for row in rows) == len(cells)
    assert "Subtotal" in column["Customer"]
    assert "TOTAL" in column["PI"]
    optional = [v for name in ("ShipDate", "ItemCode", "DeliveryFrom", "ShipTo", "Comments") for v in column[name]]
    assert {"NULL", "null"} <= set(optional)
    assert min(stray_spaces("Customer"), stray_spaces("Country"), stray_spaces("Product")) > 0
    assert any(isinstance(v, str) and re.match(r"\((EOL|PROMO|NEW|B2B)\) ", v.strip()) for v in column["Product"])
    assert {"datetime", "int", "str"} <= set(kinds("InvDate"))
    assert {"datetime", "int", "str"} <= set(kinds("ShipDate"))
    assert any(isinstance(v, str) and re.fullmatch(r" -?\d+", v) for v in column["Quantity"])
    assert any(isinstance(v, str) and re.fullmatch(r"-?\d{1,3}(,\d{3})+\.\d\d", v) for v in column["Total"])
    assert any(isinstance(v, str) for v in column["Price"])
    assert any(isinstance(v, int | float) and v < 0 for v in column["Quantity"])
    assert UNMAPPED_CURRENCY in column["Currency"]
    assert UNMAPPED_COUNTRY in column["Country"]
    assert any(isinstance(v, str) and not v.isascii() for v in column["Customer"])


def _normalise(name: str) -> str:
    return re.sub(r"^\([^)]*\)", "", name.strip().upper()).strip()


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "NULL", "null") else text


def _number(value: object) -> float | None:
    text = _text(value)
    return None if text is None else float(text.replace(",", ""))


def _date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, int | float):
        return date(1899, 12, 30) + timedelta(days=int(value))
    text = _text(value)
    return None if text is None else date.fromisoformat(text)


def test_a_reference_cleaner_recovers_the_truth_from_the_cells(
    written: SampleReport, cells: dict[str, list[tuple[object, ...]]]
) -> None:
    """Trim, NULL -> null, parse text numbers and dates, drop the product tag: that is the truth."""
    col = {name: k for k, name in enumerate(HEADER)}
    records = []
    for sheet, sheet_row in written.truth.select("source_sheet", "source_row").iter_rows():
        row = cells[sheet][sheet_row - 1]
        quantity = _number(row[col["Quantity"]])
        records.append(
            {
                "source_sheet": sheet,
                "source_row": sheet_row,
                "invoice_number": _text(row[col["PI"]]),
                "invoice_date": _date(row[col["InvDate"]]),
                "ship_date": _date(row[col["ShipDate"]]),
                "customer": _text(row[col["Customer"]]),
                "country": _text(row[col["Country"]]),
                "product": _normalise(str(row[col["Product"]])),
                "item_code": _text(row[col["ItemCode"]]),
                "quantity": None if quantity is None else int(quantity),
                "currency": _text(row[col["Currency"]]),
                "price": _number(row[col["Price"]]),
                "discount": _number(row[col["Discount"]]),
                "tt_discount": _number(row[col["T/T Discount"]]),
                "total_local": _number(row[col["Total"]]),
                "delivery_from": _text(row[col["DeliveryFrom"]]),
                "ship_to": _text(row[col["ShipTo"]]),
                "comments": _text(row[col["Comments"]]),
            }
        )
    cleaned = pl.DataFrame(records, schema=written.truth.select(list(records[0])).schema)
    assert_frame_equal(cleaned, written.truth.select(cleaned.columns))


def test_subtotal_rows_sum_the_block_above_them(
    written: SampleReport, cells: dict[str, list[tuple[object, ...]]]
) -> None:
    total_of = {
        (sheet, row): total
        for sheet, row, total in written.truth.select("source_sheet", "source_row", "total_local").iter_rows()
    }
    for sheet, rows in cells.items():
        block = 0.0
        for sheet_row, row in enumerate(rows, start=1):
            if row[3] == "Subtotal" or row[0] == "TOTAL":
                label = 3 if row[3] == "Subtotal" else 0
                assert all(value is None for k, value in enumerate(row) if k not in (label, 10))
                assert row[10] == pytest.approx(block, abs=0.01)
                block = 0.0
            else:
                block += total_of.get((sheet, sheet_row), 0.0)
        assert block == 0.0, f"{sheet} does not end with a subtotal"


def test_the_last_quarter_is_partial_and_earlier_years_are_complete(written: SampleReport) -> None:
    truth = written.truth
    end = written.end_date
    assert end == resolve_end_date(SMALL)
    assert date(2024, 11, 4) <= end <= date(2024, 11, 12)
    assert truth["invoice_date"].max() is not None
    assert truth["invoice_date"].max() <= end  # type: ignore[operator]
    assert truth.filter(pl.col("invoice_date") > end - timedelta(days=7)).height > 0
    per_quarter = dict(
        truth.filter(pl.col("source_sheet") == "2024").group_by(pl.col("invoice_date").dt.quarter()).len().iter_rows()
    )
    assert per_quarter[4] < 0.6 * per_quarter[3]
    assert truth.filter(pl.col("invoice_date") >= date(2023, 12, 15)).height > 0


def test_an_explicit_end_date_stops_the_data() -> None:
    spec = SampleSpec(years=(2023, 2024), rows_per_year=300, end_date=date(2024, 5, 15))
    truth = generate_sales(spec, MAPPING_DIR)
    assert date(2024, 5, 1) <= truth["invoice_date"].max() <= date(2024, 5, 15)  # type: ignore[operator]
    with pytest.raises(ValueError, match="final year"):
        SampleSpec(years=(2023, 2024), end_date=date(2023, 5, 15))


def test_volume_grows_year_on_year_and_peaks_in_the_fourth_quarter(written: SampleReport) -> None:
    hardware = written.truth.filter(~pl.col("source_sheet").str.ends_with("C2"))
    quarter = pl.format("{}Q{}", pl.col("invoice_date").dt.year(), pl.col("invoice_date").dt.quarter())
    per_quarter = dict(hardware.group_by(quarter.alias("quarter")).len().iter_rows())
    assert per_quarter["2023Q4"] > 1.2 * per_quarter["2023Q1"]
    first_three = [sum(per_quarter[f"{year}Q{q}"] for q in (1, 2, 3)) for year in (2023, 2024)]
    assert first_three[1] > 1.05 * first_three[0]


def test_revenue_is_the_local_total_times_the_mapped_rate(written: SampleReport) -> None:
    rates = dict(pl.read_csv(MAPPING_DIR / "exchange_rates.csv").iter_rows())
    truth = written.truth
    mapped = truth.filter(pl.col("currency").is_in(list(rates)))
    expected = mapped["total_local"] * mapped["currency"].replace_strict(rates, return_dtype=pl.Float64)
    assert (mapped["revenue_usd"] == expected).all()
    assert set(mapped["currency"].unique()) == set(rates)
    unmapped = truth.filter(~pl.col("currency").is_in(list(rates)))
    assert unmapped["currency"].unique().to_list() == [UNMAPPED_CURRENCY]
    assert unmapped["revenue_usd"].null_count() == unmapped.height
    regions = truth.filter(pl.col("country") == UNMAPPED_COUNTRY)["region"].unique().to_list()
    assert regions == [UNMAPPED_REGION]
    assert truth.filter(pl.col("country") != UNMAPPED_COUNTRY)["region"].null_count() == 0
    assert UNMAPPED_REGION not in truth.filter(pl.col("country") != UNMAPPED_COUNTRY)["region"].to_list()
    totals = truth["quantity"] * truth["price"] * (1 - truth["discount"].fill_null(0.0))
    assert ((truth["total_local"] - totals).abs() <= 0.005 + 1e-9).all()


def test_customers_form_a_long_tail(written: SampleReport) -> None:
    shares = written.truth.group_by("customer").len().sort("len", descending=True)["len"]
    assert shares.len() > 200
    assert shares[0] > 10 * shares.median()  # type: ignore[operator]
    assert written.truth.filter(pl.col("quantity") < 0).height > 0


def test_shares_at_zero_give_a_tidy_fully_mapped_workbook(tmp_path: Path) -> None:
    spec = SampleSpec(years=(2024,), rows_per_year=800, unmapped_share=0.0, mess_share=0.0)
    report = write_workbook(tmp_path / "tidy.xlsx", spec, MAPPING_DIR)
    assert all(c.data_rows == c.lines for c in report.sheets)
    assert report.truth.filter(pl.col("region") == UNMAPPED_REGION).height == 0
    assert report.truth["revenue_usd"].null_count() == 0
    frame = fastexcel.read_excel(report.path).load_sheet_by_name("2024", dtypes="string").to_polars()
    assert frame.filter(pl.col("Total").str.contains(",") | pl.col("Product").str.starts_with("(")).height == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"years": ()},
        {"years": (2024, 2023)},
        {"rows_per_year": 0},
        {"mess_share": 1.5},
    ],
)
def test_an_invalid_spec_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SampleSpec(**bad)  # type: ignore[arg-type]
