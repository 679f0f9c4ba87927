"""Cleaning a sheet (and a workbook) into raw.sales_lines rows: the output, the lookups, the counts.

One tiny inline frame per case; expected values are written out by hand. Most tests use the small
reference of cleaning_support; the reference-data test copies the shipped mapping tables.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from cleaning_support import FLAGS, REAL_MAPPING_DIR, clean, expected, frame
from polars.testing import assert_frame_equal

from syno_transform.cleaning import SheetNameError, clean_workbook
from syno_transform.reference import Reference, load_reference
from syno_transform.schema import SALES_LINES_SCHEMA

# --- the output contract -----------------------------------------------------------------------


def test_a_tidy_row_becomes_one_complete_sales_line(reference: Reference) -> None:
    """Every output column for one ordinary hardware row."""
    sheet = pl.DataFrame(
        {
            "PI": ["INV-1"],
            "InvDate": [datetime(2024, 3, 5)],
            "ShipDate": [45359.0],
            "Customer": ["Acme GmbH"],
            "Country": ["germany"],
            "Product": ["(NFR) rs2423rp+"],
            "ItemCode": ["SY-1"],
            "Quantity": [2.0],
            "Currency": ["eur"],
            "Price": [500.0],
            "Total": [1000.0],
            "T/T Discount": [10.0],
            "Discount": [0.5],
            "DeliveryFrom": ["NL"],
            "ShipTo": ["Berlin"],
            "Comments": ["rush"],
        }
    )

    result = clean(sheet, reference)

    row: dict[str, list[Any]] = {
        "snapshot_id": ["snap-1"],
        "source_sheet": ["2024"],
        "source_row": [1],
        "sheet_kind": ["hardware"],
        "sheet_year": [2024],
        "invoice_number": ["INV-1"],
        "invoice_date": [date(2024, 3, 5)],
        "ship_date": [date(2024, 3, 8)],
        "customer": ["Acme GmbH"],
        "country": ["germany"],
        "region": ["DE"],
        "product_raw": ["(NFR) rs2423rp+"],
        "product": ["RS2423RP+"],
        "product_tag": ["NFR"],
        "item_code": ["SY-1"],
        "quantity": [2],
        "currency": ["EUR"],
        "price": [500.0],
        "total_local": [1000.0],
        "revenue_usd": [1500.0],
        "tt_discount": [10.0],
        "discount": [0.5],
        "delivery_from": ["NL"],
        "ship_to": ["Berlin"],
        "comments": ["rush"],
        "product_type": ["SERVER"],
        "sub_cat": ["SVR-RM-GP-T2"],
        "tier": ["T2"],
        "is_c2": [False],
        "c2_service_family": [None],
        "c2_capacity": [None],
        "c2_plan": [None],
        "is_country_unmapped": [False],
        "is_currency_unmapped": [False],
        "is_product_unmapped": [False],
        "extras": [None],
    }
    assert_frame_equal(result.lines, expected(**row))
    assert result.dropped == {"blank": 0, "subtotal": 0, "repeated_header": 0}
    assert result.unmapped.is_empty()
    assert result.unconvertible.is_empty()


def test_a_lazy_frame_is_accepted(reference: Reference) -> None:
    result = clean(pl.LazyFrame({"PI": ["A1"], "Total": ["7"]}), reference)

    assert_frame_equal(
        result.lines.select("invoice_number", "total_local"),
        expected(invoice_number=["A1"], total_local=[7.0]),
    )


def test_sheet_kind_and_year_come_from_the_sheet_name(reference: Reference) -> None:
    result = clean(pl.DataFrame({"PI": ["A1"]}), reference, sheet_name="2023-C2")

    assert_frame_equal(
        result.lines.select("source_sheet", "sheet_kind", "sheet_year"),
        expected(source_sheet=["2023-C2"], sheet_kind=["c2"], sheet_year=[2023]),
    )


def test_a_sheet_outside_the_contract_is_refused(reference: Reference) -> None:
    with pytest.raises(SheetNameError, match="'Pivot' is not a contract sheet"):
        clean(pl.DataFrame({"PI": ["A1"]}), reference, sheet_name="Pivot")


def test_an_empty_sheet_gives_no_lines(reference: Reference) -> None:
    """fastexcel loads an empty sheet as a (0, 0) frame."""
    result = clean(pl.DataFrame(), reference)

    assert_frame_equal(result.lines, pl.DataFrame(schema=SALES_LINES_SCHEMA))
    assert result.dropped == {"blank": 0, "subtotal": 0, "repeated_header": 0}


# --- headers ----------------------------------------------------------------------------------


def test_headers_match_the_contract_case_and_space_insensitively(reference: Reference) -> None:
    """' InvDate', 'pi', 't/t discount', 'TOTAL ' are contract columns."""
    sheet = pl.DataFrame({"pi": ["A1"], " InvDate": ["2024-03-05"], "t/t discount": ["4"], "TOTAL ": [9.0]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("invoice_number", "invoice_date", "tt_discount", "total_local", "extras"),
        expected(
            invoice_number=["A1"],
            invoice_date=[date(2024, 3, 5)],
            tt_discount=[4.0],
            total_local=[9.0],
            extras=[None],
        ),
    )


def test_a_second_column_with_a_contract_name_is_kept_as_an_extra(reference: Reference) -> None:
    sheet = pl.DataFrame({"PI": ["A1"], "Total": [5.0], "total": ["6"]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("total_local", "extras"), expected(total_local=[5.0], extras=['{"total":"6"}'])
    )


def test_contract_columns_missing_from_the_sheet_are_null(reference: Reference) -> None:
    result = clean(pl.DataFrame({"Customer": ["Acme"]}), reference)

    assert_frame_equal(
        result.lines.select("customer", "invoice_number", "invoice_date", "quantity", "total_local", "comments"),
        expected(
            customer=["Acme"],
            invoice_number=[None],
            invoice_date=[None],
            quantity=[None],
            total_local=[None],
            comments=[None],
        ),
    )
    assert result.unconvertible.is_empty()


# --- currency and country ------------------------------------------------------------------------


def test_revenue_is_total_times_the_rate_of_the_upper_cased_currency(reference: Reference) -> None:
    sheet = pl.DataFrame({"PI": ["A1", "A2", "A3"], "Currency": [" eur ", "JPY", "usd"], "Total": [100.0, 1000.0, 7.0]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("currency", "total_local", "revenue_usd", "is_currency_unmapped"),
        expected(
            currency=["EUR", "JPY", "USD"],
            total_local=[100.0, 1000.0, 7.0],
            revenue_usd=[150.0, 250.0, 7.0],
            is_currency_unmapped=[False, False, False],
        ),
    )


def test_an_unknown_or_missing_currency_has_no_revenue_and_is_flagged_never_guessed(
    reference: Reference,
) -> None:
    sheet = pl.DataFrame({"PI": ["A1", "A2", "A3", "A4"], "Currency": ["gbp", "GBP", None, "EUR"], "Total": [10.0] * 4})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("currency", "revenue_usd", "is_currency_unmapped"),
        expected(
            currency=["GBP", "GBP", None, "EUR"],
            revenue_usd=[None, None, None, 15.0],
            is_currency_unmapped=[True, True, True, False],
        ),
    )


def test_region_comes_from_the_country_matched_case_insensitively_after_trimming(
    reference: Reference,
) -> None:
    sheet = pl.DataFrame({"Country": ["GERMANY", "  germany ", "korea,  republic of", "Japan"]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("country", "region", "is_country_unmapped"),
        expected(
            country=["GERMANY", "germany", "korea, republic of", "Japan"],
            region=["DE", "DE", "HQ", "JP"],
            is_country_unmapped=[False] * 4,
        ),
    )


def test_an_unknown_or_missing_country_is_unmapped_and_the_row_kept(reference: Reference) -> None:
    sheet = pl.DataFrame({"PI": ["A1", "A2", "A3"], "Country": ["Atlantis", None, "Germany"]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("country", "region", "is_country_unmapped"),
        expected(
            country=["Atlantis", None, "Germany"],
            region=["UNMAPPED", "UNMAPPED", "DE"],
            is_country_unmapped=[True, True, False],
        ),
    )


def test_unmapped_lists_each_distinct_value_with_its_row_count(reference: Reference) -> None:
    """By kind, then most rows first; null (a blank cell) last."""
    sheet = pl.DataFrame(
        {
            "PI": ["A1", "A2", "A3", "A4", "A5"],
            "Country": ["Atlantis", "Atlantis", "Narnia", None, "Germany"],
            "Currency": ["GBP", "EUR", "EUR", "EUR", "CHF"],
            "Product": ["DS920+", "DS920+", "Gizmo", "DS920+", "DS920+"],
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.unmapped,
        frame(
            {"rows": pl.Int64},
            field=["country", "country", "country", "currency", "currency", "product"],
            value=["Atlantis", "Narnia", None, "CHF", "GBP", "GIZMO"],
            rows=[2, 1, 1, 1, 1, 1],
        ),
    )


# --- reference data is data ------------------------------------------------------------------------


def test_a_new_rule_country_and_currency_in_the_mapping_dir_apply_without_code_change(tmp_path: Path) -> None:
    """Rows appended to a copy of the shipped tables change the output; no code is touched."""
    mapping_dir = tmp_path / "mapping_table"
    shutil.copytree(REAL_MAPPING_DIR, mapping_dir)
    sheet = pl.DataFrame(
        {
            "PI": ["A1"],
            "Country": ["Atlantis"],
            "Currency": ["GBP"],
            "Product": ["BeeStation BST-1000"],
            "Total": [10.0],
        }
    )
    before = clean(sheet, load_reference(mapping_dir))
    appended = {
        "Mapped_Countries_with_Regions.csv": "\r\nAtlantis,FR\r\n",
        "exchange_rates.csv": "\nGBP,1.25\n",
        "product_rules.csv": "\ntype,5,,^BEESTATION,,BEESTATION,\nsub_cat,5,BEESTATION,BST,,,BST-HOME\n",
    }
    for name, text in appended.items():
        with (mapping_dir / name).open("a", newline="") as file:
            file.write(text)

    after = clean(sheet, load_reference(mapping_dir))

    columns = ["region", "revenue_usd", "product_type", "sub_cat", *FLAGS]
    assert_frame_equal(
        before.lines.select(columns),
        expected(
            region=["UNMAPPED"],
            revenue_usd=[None],
            product_type=["Other"],
            sub_cat=["Other"],
            is_country_unmapped=[True],
            is_currency_unmapped=[True],
            is_product_unmapped=[False],
        ),
    )
    assert_frame_equal(
        after.lines.select(columns),
        expected(
            region=["FR"],
            revenue_usd=[12.5],
            product_type=["BEESTATION"],
            sub_cat=["BST-HOME"],
            is_country_unmapped=[False],
            is_currency_unmapped=[False],
            is_product_unmapped=[False],
        ),
    )
    assert after.unmapped.is_empty()


def test_rows_keep_the_sheet_order(reference: Reference) -> None:
    """The per-product classification join does not reorder rows."""
    products = ["DS920+", "RS822+", "HAT5300", None, "RS822+", "DS920+", "C2 Storage", "HAT5300"] * 50
    sheet = pl.DataFrame({"PI": [f"P{i}" for i in range(400)], "Product": products})

    result = clean(sheet, reference)

    assert result.lines.get_column("source_row").to_list() == list(range(1, 401))
    assert result.lines.get_column("invoice_number").to_list() == [f"P{i}" for i in range(400)]


def test_a_workbook_is_its_sheets_in_order_with_counts_summed_over_sheets(reference: Reference) -> None:
    """The same unmapped country on two sheets is one value with the rows of both; dropped rows add up."""
    sheets = {
        "2023": pl.DataFrame({"PI": ["A1", None, "A2"], "Country": ["Atlantis", None, "Germany"]}),
        "2024-C2": pl.DataFrame({"PI": ["B1", "B2"], "Country": ["Atlantis", "Narnia"]}),
    }

    result = clean_workbook(sheets, snapshot_id="snap-1", reference=reference)

    assert_frame_equal(
        result.lines.select("source_sheet", "source_row", "invoice_number"),
        expected(
            source_sheet=["2023", "2023", "2024-C2", "2024-C2"],
            source_row=[1, 3, 1, 2],
            invoice_number=["A1", "A2", "B1", "B2"],
        ),
    )
    assert result.dropped == {"blank": 1, "subtotal": 0, "repeated_header": 0}
    assert_frame_equal(
        result.unmapped.filter(pl.col("field") == "country"),
        frame({"rows": pl.Int64}, field=["country", "country"], value=["Atlantis", "Narnia"], rows=[2, 1]),
    )
