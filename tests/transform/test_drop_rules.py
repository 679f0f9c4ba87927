"""Rows that are not sales lines (blank, subtotal, repeated header) are dropped and counted."""

from __future__ import annotations

from datetime import date

import polars as pl
from cleaning_support import clean, expected
from polars.testing import assert_frame_equal

from syno_transform.reference import Reference

# --- dropped rows --------------------------------------------------------------------------------


def test_blank_rows_are_dropped_and_counted_and_source_row_keeps_the_sheet_position(
    reference: Reference,
) -> None:
    """All contract cells empty (null, '', 'NULL') means blank, even with an extra column filled."""
    sheet = pl.DataFrame(
        {
            "PI": ["A1", None, "", "A4", " NULL "],
            "Total": [1.0, None, None, 4.0, None],
            "Notes": [None, None, "x", None, None],
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("source_row", "invoice_number", "total_local"),
        expected(source_row=[1, 4], invoice_number=["A1", "A4"], total_local=[1.0, 4.0]),
    )
    assert result.dropped == {"blank": 3, "subtotal": 0, "repeated_header": 0}


def test_subtotal_rows_are_dropped_and_counted(reference: Reference) -> None:
    """Customer or PI starting with total/subtotal (any case), or a Total with no product, customer, PI."""
    sheet = pl.DataFrame(
        {
            "PI": ["A1", None, "TOTAL", None, None, "A6", None],
            "Customer": ["Acme", "Subtotal", None, "Sub-total Q1", None, "Totalcom GmbH", "Grand Total"],
            "Product": ["DS920+", None, None, None, None, "DS920+", None],
            "Total": [10.0, 10.0, 20.0, 20.0, 30.0, 5.0, 35.0],
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("source_row", "customer"),
        expected(source_row=[1, 6], customer=["Acme", "Totalcom GmbH"]),
    )
    assert result.dropped == {"blank": 0, "subtotal": 5, "repeated_header": 0}


def test_repeated_header_rows_are_dropped_and_counted(reference: Reference) -> None:
    """A PI cell reading 'PI' (any case), or an InvDate cell reading 'InvDate', is a header row."""
    sheet = pl.DataFrame(
        {
            "PI": ["A1", "PI", " pi ", None],
            "InvDate": ["2024-03-05", "InvDate", "InvDate", "InvDate"],
            "Total": ["1", "Total", "Total", "Total"],
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("source_row", "invoice_number", "invoice_date", "total_local"),
        expected(source_row=[1], invoice_number=["A1"], invoice_date=[date(2024, 3, 5)], total_local=[1.0]),
    )
    assert result.dropped == {"blank": 0, "subtotal": 0, "repeated_header": 3}
    assert result.unconvertible.is_empty()
