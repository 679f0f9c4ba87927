"""One cell, whatever its dtype: text cleaned, null tokens, numbers and dates parsed, extras kept as JSON.

Each case is a tiny inline sheet cleaned whole; expected values are written out by hand.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import polars as pl
import pytest
from cleaning_support import clean, expected, frame
from polars.testing import assert_frame_equal

from syno_transform.reference import Reference

# --- extras ------------------------------------------------------------------------------------


def test_extra_columns_are_kept_as_a_json_object_of_text(reference: Reference) -> None:
    """{original header: value as text}; null cells are left out; a row with none has null extras."""
    sheet = pl.DataFrame(
        {
            "PI": ["A1", "A2", "A3"],
            " Sales  Rep ": ["Bob", None, 'Ann "the" Best'],
            "Seats": [3.0, None, 2.5],
            "Note": [None, None, "n/a"],
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("invoice_number", "extras"),
        expected(
            invoice_number=["A1", "A2", "A3"],
            extras=['{"Sales Rep":"Bob","Seats":"3"}', None, '{"Sales Rep":"Ann \\"the\\" Best","Seats":"2.5"}'],
        ),
    )
    assert json.loads(result.lines.item(2, "extras")) == {"Sales Rep": 'Ann "the" Best', "Seats": "2.5"}


# --- text ------------------------------------------------------------------------------------


def test_text_is_trimmed_and_inner_whitespace_collapsed(reference: Reference) -> None:
    """Spaces, tabs, newlines and no-break spaces: trimmed at the ends, one space inside."""
    sheet = pl.DataFrame(
        {
            "Customer": ["  Acme \t GmbH  ", "Zürich\u00a0\u00a0AG", "Line\none"],
            "ShipTo": ["\u00a0Berlin ", " a  b  c ", "x"],
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("customer", "ship_to"),
        expected(customer=["Acme GmbH", "Zürich AG", "Line one"], ship_to=["Berlin", "a b c", "x"]),
    )


@pytest.mark.parametrize("token", ["NULL", "null", "N/A", "n/a", "#N/A", "-", "", "   ", " NULL "])
def test_null_tokens_become_null_in_every_kind_of_column(reference: Reference, token: str) -> None:
    """The token is null in a text, number, integer and date column, and is not 'unconvertible'."""
    sheet = pl.DataFrame({"PI": ["A1"], "Customer": [token], "Total": [token], "Quantity": [token], "InvDate": [token]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("customer", "total_local", "quantity", "invoice_date"),
        expected(customer=[None], total_local=[None], quantity=[None], invoice_date=[None]),
    )
    assert result.unconvertible.is_empty()


def test_text_columns_of_other_dtypes_read_as_text(reference: Reference) -> None:
    """An invoice number inferred as a float loses the '.0'; an int, a bool, a date read as written."""
    sheet = pl.DataFrame(
        {
            "PI": [240001.0, 12.5],
            "ItemCode": [7, 8],
            "Comments": [True, False],
            "ShipTo": [date(2024, 1, 2), date(2024, 1, 3)],
            "DeliveryFrom": [datetime(2024, 1, 2), datetime(2024, 1, 3, 10, 30)],
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("invoice_number", "item_code", "comments", "ship_to", "delivery_from"),
        expected(
            invoice_number=["240001", "12.5"],
            item_code=["7", "8"],
            comments=["true", "false"],
            ship_to=["2024-01-02", "2024-01-03"],
            delivery_from=["2024-01-02", "2024-01-03 10:30:00"],
        ),
    )


# --- numbers -------------------------------------------------------------------------------------


def test_numbers_stored_as_text_are_parsed(reference: Reference) -> None:
    """'1,234.50', ' 3', '-2.5', '1e3', '12,345,678' parse; the thousands separator is a comma only."""
    sheet = pl.DataFrame({"PI": ["A"] * 6, "Total": ["1,234.50", " 3", "-2.5", "1e3", "12,345,678", "+4"]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("total_local"),
        expected(total_local=[1234.5, 3.0, -2.5, 1000.0, 12345678.0, 4.0]),
    )


def test_numbers_that_cannot_be_read_are_null_and_counted(reference: Reference) -> None:
    """'abc', a decimal comma '1,5', '12,34' (not a thousands group) and 'inf' are never guessed."""
    sheet = pl.DataFrame({"PI": ["A1", "A2", "A3", "A4", "A5"], "Total": ["abc", "1,5", "abc", "12,34", "inf"]})

    result = clean(sheet, reference)

    assert_frame_equal(result.lines.select("total_local"), expected(total_local=[None, None, None, None, None]))
    assert_frame_equal(
        result.unconvertible,
        frame(
            {"rows": pl.Int64},
            column=["total_local", "total_local", "total_local", "total_local"],
            value=["abc", "1,5", "12,34", "inf"],
            rows=[2, 1, 1, 1],
        ),
    )


@pytest.mark.parametrize(
    ("values", "dtype", "price"),
    [
        ([12.5, None], pl.Float64, [12.5, None]),
        ([12, None], pl.Int64, [12.0, None]),
        (["12.5", None], pl.String, [12.5, None]),
        ([None, None], pl.Null, [None, None]),
    ],
)
def test_a_number_column_of_any_dtype_is_float64(
    reference: Reference, values: list[Any], dtype: pl.DataType, price: list[float | None]
) -> None:
    sheet = pl.DataFrame({"PI": ["A1", "A2"], "Price": pl.Series(values, dtype=dtype)})

    result = clean(sheet, reference)

    assert_frame_equal(result.lines.select("price"), expected(price=price))


def test_a_boolean_in_a_number_column_is_unconvertible(reference: Reference) -> None:
    sheet = pl.DataFrame({"PI": ["A1"], "Price": [True]})

    result = clean(sheet, reference)

    assert_frame_equal(result.lines.select("price"), expected(price=[None]))
    assert_frame_equal(result.unconvertible, frame({"rows": pl.Int64}, column=["price"], value=["true"], rows=[1]))


def test_quantity_is_a_whole_number(reference: Reference) -> None:
    """'3', 3.0, '-1', '1,000' are integers; 2.5 and '2.5' are unconvertible (null and counted)."""
    text = pl.DataFrame({"PI": ["A", "B", "C", "D"], "Quantity": ["3", "-1", "1,000", "2.5"]})
    floats = pl.DataFrame({"PI": ["A", "B"], "Quantity": [3.0, 2.5]})
    ints = pl.DataFrame({"PI": ["A"], "Quantity": [4]})

    from_text, from_floats, from_ints = (clean(sheet, reference) for sheet in (text, floats, ints))

    assert_frame_equal(from_text.lines.select("quantity"), expected(quantity=[3, -1, 1000, None]))
    assert_frame_equal(from_floats.lines.select("quantity"), expected(quantity=[3, None]))
    assert_frame_equal(from_ints.lines.select("quantity"), expected(quantity=[4]))
    unconvertible = frame({"rows": pl.Int64}, column=["quantity"], value=["2.5"], rows=[1])
    assert_frame_equal(from_text.unconvertible, unconvertible)
    assert_frame_equal(from_floats.unconvertible, unconvertible)


# --- dates ---------------------------------------------------------------------------------------


def test_dates_from_excel_serials_datetimes_and_dates(reference: Reference) -> None:
    """45356 is 2024-03-05 (days since 1899-12-30); a fraction is the time of day."""
    serial_floats = pl.DataFrame({"InvDate": [45356.0, 45356.75, 45292.0]})
    serial_ints = pl.DataFrame({"InvDate": [45356, 45292, 1]})
    datetimes = pl.DataFrame({"InvDate": [datetime(2024, 3, 5, 13, 45), datetime(2024, 1, 1)]})
    dates = pl.DataFrame({"InvDate": [date(2024, 3, 5)]})

    results = [clean(sheet, reference).lines.select("invoice_date") for sheet in (serial_floats, serial_ints)]
    results += [clean(sheet, reference).lines.select("invoice_date") for sheet in (datetimes, dates)]

    assert_frame_equal(results[0], expected(invoice_date=[date(2024, 3, 5), date(2024, 3, 5), date(2024, 1, 1)]))
    assert_frame_equal(results[1], expected(invoice_date=[date(2024, 3, 5), date(2024, 1, 1), None]))
    assert_frame_equal(results[2], expected(invoice_date=[date(2024, 3, 5), date(2024, 1, 1)]))
    assert_frame_equal(results[3], expected(invoice_date=[date(2024, 3, 5)]))


def test_dates_written_as_text(reference: Reference) -> None:
    """ISO, day-first with slashes, year-first with slashes, a time suffix, and a serial as text."""
    sheet = pl.DataFrame(
        {
            "ShipDate": [
                "2024-03-05",
                "05/03/2024",
                "2024/03/05",
                "2024-3-5",
                "2024-03-05 00:00:00",
                "2024-03-05T10:11:12",
                "45356",
                "31/12/2023",
            ]
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("ship_date"),
        expected(ship_date=[date(2024, 3, 5)] * 7 + [date(2023, 12, 31)]),
    )


def test_dates_that_cannot_be_read_are_null_and_counted(reference: Reference) -> None:
    """No 31 February, no two-digit years, no month-first, no words, and Excel serial 1 is before 1900."""
    sheet = pl.DataFrame(
        {"PI": ["A", "B", "C", "D", "E"], "InvDate": ["31/02/2024", "05/03/24", "03/25/2024", "soon", "1"]}
    )

    result = clean(sheet, reference)

    assert_frame_equal(result.lines.select("invoice_date"), expected(invoice_date=[None] * 5))
    assert_frame_equal(
        result.unconvertible,
        frame(
            {"rows": pl.Int64},
            column=["invoice_date"] * 5,
            value=["03/25/2024", "05/03/24", "1", "31/02/2024", "soon"],
            rows=[1, 1, 1, 1, 1],
        ),
    )
