"""Contract checks and snapshot deltas, on plain Python data."""

from __future__ import annotations

import pytest

from syno_ingestion.validation import check_header, contract_sheets, find_header_row, snapshot_delta
from syno_shared.errors import InputRejected
from syno_shared.events import SnapshotDelta

HEADER = ["PI", "InvDate", "ShipDate", "Customer", "Country", "Product", "Quantity", "Currency", "Total"]


def test_contract_sheets_pick_year_and_c2_sheets_including_new_years() -> None:
    sheets = contract_sheets(["Notes", "2023", "2023-C2", "2027", " 2027 - c2 ", "Pivot"])
    assert [(s.name, s.year, s.kind) for s in sheets] == [
        ("2023", 2023, "hardware"),
        ("2023-C2", 2023, "c2"),
        ("2027", 2027, "hardware"),
        (" 2027 - c2 ", 2027, "c2"),
    ]


def test_a_workbook_without_sales_sheets_is_rejected() -> None:
    with pytest.raises(InputRejected, match="no sales sheets") as caught:
        contract_sheets(["Sheet1", "Summary"])
    assert caught.value.code == "no_sales_sheets"


def test_header_found_below_title_rows_ignoring_case_and_spaces() -> None:
    preview = [
        ["Synology sale-out export", None],
        [None, None],
        [" pi ", "inv date", "Ship Date", "CUSTOMER", "country", "Product", "QUANTITY", "currency", "total"],
    ]
    assert find_header_row(preview) == 2


def test_missing_required_columns_are_named() -> None:
    preview = [[c for c in HEADER if c not in ("Currency", "Total")]]
    with pytest.raises(InputRejected, match=r"missing \['Currency', 'Total'\]") as caught:
        check_header("2024", preview)
    assert caught.value.code == "wrong_schema"


def test_delta_against_previous_snapshot() -> None:
    old = "0" * 64
    previous = {
        "snapshot_id": old,
        "size_bytes": 100,
        "sheets": {"2023": {"rows": 10, "columns": ["PI", "Total"]}, "2023-C2": {"rows": 2, "columns": ["PI"]}},
    }
    current = {
        "size_bytes": 150,
        "sheets": {"2023": {"rows": 12, "columns": ["PI", "Total", "Sales Rep"]}, "2024": {"rows": 5, "columns": []}},
    }
    assert snapshot_delta(current, previous) == SnapshotDelta(
        is_first=False,
        previous_snapshot_id=old,
        size_bytes=50,
        sheets_added=["2024"],
        sheets_removed=["2023-C2"],
        rows={"2023": 2},
        columns_added={"2023": ["Sales Rep"]},
        columns_removed={},
    )
    assert snapshot_delta(current, None) == SnapshotDelta(is_first=True)


def test_only_ascii_digits_make_a_year_sheet() -> None:
    """A sheet named with Arabic-Indic digits is not the 2024 sheet (\\d alone would accept it)."""
    from syno_shared.contract import sheet_kind

    assert sheet_kind("2024") == (2024, "hardware")
    assert sheet_kind("20٢٤") is None and sheet_kind("٢٠٢٤-C2") is None
