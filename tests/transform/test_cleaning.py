"""Cleaning one sheet into raw.sales_lines rows: one tiny inline frame per messy case.

Expected values are written out by hand. Most tests use a small reference written to a temp
mapping dir (so its rules are visible here); the real-name checks use the shipped mapping tables.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from syno_transform.cleaning import CleanResult, SheetNameError, clean_sales, clean_workbook
from syno_transform.reference import Reference, load_reference
from syno_transform.schema import SALES_LINES_SCHEMA

REPO = Path(__file__).resolve().parents[2]
REAL_MAPPING_DIR = REPO / "data" / "mapping_table"

SMALL_MAPPING = {
    "Mapped_Countries_with_Regions.csv": 'Country,Region\r\nGermany,DE\r\n"Korea, Republic of",HQ\r\nJapan,JP\r\n',
    "exchange_rates.csv": "currency,rate_to_usd\nUSD,1.0\nEUR,1.5\nJPY,0.25\n",
    "device_to_bay.csv": "Product,Bays\nDS920+,4\n",
    "product_rules.csv": (
        "stage,order,when_type,pattern,and_pattern,type,sub_cat\n"
        "type,10,,^HAT,,DRIVE,\n"
        "type,20,,^(DS|RS)[^ _]*$,,SERVER,\n"
        "type,30,,^C2.*BACKUP,,C2-SAAS,\n"
        "type,40,,^C2.*STORAGE,,C2-HYBRID,\n"
        "type,50,,LICENSE,PRO,DSMLICENSE,\n"
        "type,60,,^(DS|RS|X),,Other,\n"
        "sub_cat,10,DRIVE,.,,,DRV\n"
        "sub_cat,20,SERVER,^RS.*XS,,,SVR-RM-GP-T3\n"
        "sub_cat,21,SERVER,^RS,RP,,SVR-RM-GP-T2\n"
        "sub_cat,22,SERVER,^RS,,,SVR-RM-GP-T1\n"
        "sub_cat,23,SERVER,^DS,,,SVR-DT-DS\n"
        "sub_cat,30,DSMLICENSE,.,,,DSMLICENSE\n"
    ),
    "c2_keywords.csv": (
        "field,order,keyword,value\n"
        "service_family,1,STORAGE,STORAGE\n"
        "service_family,2,BACKUP,BACKUP\n"
        "capacity,1,1T,1T\n"
        "capacity,2,100G,100G\n"
        "plan,1,BUSINESS,BUSINESS\n"
        "plan,2,ADV,ADVANCED\n"
    ),
}

FLAGS = ["is_country_unmapped", "is_currency_unmapped", "is_product_unmapped"]
PRODUCT_COLUMNS = ["product_raw", "product", "product_tag", "product_type", "sub_cat", "tier"]
C2_COLUMNS = ["product", "product_type", "sub_cat", "is_c2", "c2_service_family", "c2_capacity", "c2_plan"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    mapping_dir = tmp_path_factory.mktemp("mapping_table")
    for name, text in SMALL_MAPPING.items():
        (mapping_dir / name).write_bytes(text.encode())
    return load_reference(mapping_dir)


@pytest.fixture(scope="module")
def real_reference() -> Reference:
    return load_reference(REAL_MAPPING_DIR)


def clean(sheet: pl.DataFrame | pl.LazyFrame, reference: Reference, sheet_name: str = "2024") -> CleanResult:
    return clean_sales(sheet, sheet_name=sheet_name, snapshot_id="snap-1", reference=reference)


def frame(schema: dict[str, Any], **columns: list[Any]) -> pl.DataFrame:
    """An expected frame: column name -> values, with dtypes from `schema` (String when not listed)."""
    return pl.DataFrame(columns, schema={name: schema.get(name, pl.String) for name in columns})


def expected(**columns: list[Any]) -> pl.DataFrame:
    """An expected slice of raw.sales_lines, dtypes as in the table."""
    return frame(dict(SALES_LINES_SCHEMA), **columns)


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


# --- headers and extras ------------------------------------------------------------------------


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


# --- products ------------------------------------------------------------------------------------


def test_product_is_trimmed_upper_cased_and_its_leading_tag_split_off(reference: Reference) -> None:
    sheet = pl.DataFrame({"Product": [" (NFR)  ds920+ ", "(Demo)RS822+", "DS920+ (refurb)", "( )HAT5300"]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("product_raw", "product", "product_tag"),
        expected(
            product_raw=["(NFR) ds920+", "(Demo)RS822+", "DS920+ (refurb)", "( )HAT5300"],
            product=["DS920+", "RS822+", "DS920+ (REFURB)", "HAT5300"],
            product_tag=["NFR", "Demo", None, None],
        ),
    )


def test_the_first_matching_type_rule_then_the_first_sub_cat_rule_of_that_type_win(
    reference: Reference,
) -> None:
    """Rules apply in `order`; and_pattern must match too; sub_cat rules only see their own type."""
    sheet = pl.DataFrame(
        {"Product": ["RS3621xs+", "RS2423RP+", "RS822+", "DS920+", "DS NAS bundle", "HAT5300", "VMM license PRO"]}
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("product", "product_type", "sub_cat", "tier", "is_product_unmapped"),
        expected(
            product=["RS3621XS+", "RS2423RP+", "RS822+", "DS920+", "DS NAS BUNDLE", "HAT5300", "VMM LICENSE PRO"],
            product_type=["SERVER", "SERVER", "SERVER", "SERVER", "Other", "DRIVE", "DSMLICENSE"],
            sub_cat=["SVR-RM-GP-T3", "SVR-RM-GP-T2", "SVR-RM-GP-T1", "SVR-DT-DS", "UNMAPPED", "DRV", "DSMLICENSE"],
            tier=["T3", "T2", "T1", None, None, None, None],
            is_product_unmapped=[False, False, False, False, True, False, False],
        ),
    )


def test_a_product_no_type_rule_matches_and_a_blank_product_are_unmapped(reference: Reference) -> None:
    """Rows are kept with product_type and sub_cat 'UNMAPPED', flagged, and listed once per value."""
    sheet = pl.DataFrame(
        {
            "PI": ["A1", "A2", "A3", "A4"],
            "Product": ["Mystery box", None, "mystery  BOX", "NULL"],
            "Country": ["Germany"] * 4,
            "Currency": ["EUR"] * 4,
        }
    )

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select("product", "product_type", "sub_cat", "tier", "is_product_unmapped"),
        expected(
            product=["MYSTERY BOX", None, "MYSTERY BOX", None],
            product_type=["UNMAPPED"] * 4,
            sub_cat=["UNMAPPED"] * 4,
            tier=[None] * 4,
            is_product_unmapped=[True] * 4,
        ),
    )
    assert_frame_equal(
        result.unmapped,
        frame({"rows": pl.Int64}, field=["product", "product"], value=["MYSTERY BOX", None], rows=[2, 2]),
    )


def test_c2_products_get_service_capacity_and_plan_from_the_keywords(reference: Reference) -> None:
    """sub_cat is C2-<service>-<capacity>-<plan>; a field with no keyword is UNKNOWN; others stay null."""
    sheet = pl.DataFrame({"Product": ["C2 Storage Advanced", "C2_BACKUP_BUSINESS_1T", "DS920+"]})

    result = clean(sheet, reference)

    assert_frame_equal(
        result.lines.select(C2_COLUMNS),
        expected(
            product=["C2 STORAGE ADVANCED", "C2_BACKUP_BUSINESS_1T", "DS920+"],
            product_type=["C2-HYBRID", "C2-SAAS", "SERVER"],
            sub_cat=["C2-STORAGE-UNKNOWN-ADVANCED", "C2-BACKUP-1T-BUSINESS", "SVR-DT-DS"],
            is_c2=[True, True, False],
            c2_service_family=["STORAGE", "BACKUP", None],
            c2_capacity=["UNKNOWN", "1T", None],
            c2_plan=["ADVANCED", "BUSINESS", None],
        ),
    )


def test_c2_fields_follow_the_product_type_not_the_sheet(reference: Reference) -> None:
    """On '2024-C2' a product whose type is not C2 keeps its own classification and gets no C2 fields."""
    sheet = pl.DataFrame({"PI": ["A1", "A2"], "Product": ["Storage 100G plan", None]})

    result = clean(sheet, reference, sheet_name="2024-C2")

    assert_frame_equal(
        result.lines.select(C2_COLUMNS),
        expected(
            product=["STORAGE 100G PLAN", None],
            product_type=["UNMAPPED", "UNMAPPED"],
            sub_cat=["UNMAPPED", "UNMAPPED"],
            is_c2=[False, False],
            c2_service_family=[None, None],
            c2_capacity=[None, None],
            c2_plan=[None, None],
        ),
    )


def test_c2_surveillance_on_a_c2_sheet_is_a_surveillance_product_not_c2(real_reference: Reference) -> None:
    """The shipped rules type 'C2 Surveillance' as SURVEILLANCE (SVS-C2-T<n>): not C2, no C2 fields."""
    sheet = pl.DataFrame({"Product": ["C2 Surveillance Basic", "C2 Surveillance Professional", "C2 Storage Advanced"]})

    result = clean(sheet, real_reference, sheet_name="2024-C2")

    assert_frame_equal(
        result.lines.select(C2_COLUMNS),
        expected(
            product=["C2 SURVEILLANCE BASIC", "C2 SURVEILLANCE PROFESSIONAL", "C2 STORAGE ADVANCED"],
            product_type=["SURVEILLANCE", "SURVEILLANCE", "C2-HYBRID"],
            sub_cat=["SVS-C2-T1", "SVS-C2-T2", "C2-STORAGE-UNKNOWN-ADVANCED"],
            is_c2=[False, False, True],
            c2_service_family=[None, None, "STORAGE"],
            c2_capacity=[None, None, "UNKNOWN"],
            c2_plan=[None, None, "ADVANCED"],
        ),
    )


def test_real_product_names_with_the_shipped_rules(real_reference: Reference) -> None:
    """The business's own rules on a few real SKUs, rackmount tiers and C2 names included."""
    names = [
        "RS2423RP+",
        "RS3621xs+",
        "RS822+",
        "SA3400D",
        "HD6500",
        "FS6400",
        "RX1217",
        "DS923+",
        "HAT5300-8T",
        "C2 Storage Advanced",
        "C2_BACKUP_BUSINESS_1T",
    ]

    result = clean(pl.DataFrame({"Product": names}), real_reference)

    assert_frame_equal(
        result.lines.select("product", "product_type", "sub_cat", "tier", *C2_COLUMNS[3:]),
        expected(
            product=[
                "RS2423RP+",
                "RS3621XS+",
                "RS822+",
                "SA3400D",
                "HD6500",
                "FS6400",
                "RX1217",
                "DS923+",
                "HAT5300-8T",
                "C2 STORAGE ADVANCED",
                "C2_BACKUP_BUSINESS_1T",
            ],
            product_type=["SERVER"] * 8 + ["DRIVE", "C2-HYBRID", "C2-SAAS"],
            sub_cat=[
                "SVR-RM-GP-T2",
                "SVR-RM-GP-T3",
                "SVR-RM-GP-T1",
                "SVR-RM-GP-T4",
                "SVR-RM-GP-T5",
                "SVR-RM-FS-T3",
                "SVR-RM-GX-T2",
                "SVR-DT-DS-T2",
                "DRV-HD-T2",
                "C2-STORAGE-UNKNOWN-ADVANCED",
                "C2-BACKUP-1T-BUSINESS",
            ],
            tier=["T2", "T3", "T1", "T4", "T5", "T3", "T2", None, None, None, None],
            is_c2=[False] * 9 + [True, True],
            c2_service_family=[None] * 9 + ["STORAGE", "BACKUP"],
            c2_capacity=[None] * 9 + ["UNKNOWN", "1T"],
            c2_plan=[None] * 9 + ["ADVANCED", "BUSINESS"],
        ),
    )


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
