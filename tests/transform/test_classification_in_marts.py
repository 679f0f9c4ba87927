"""The cleaning's classification is the one the marts use: cleaning -> COPY load -> real dbt build.

A 'C2 Surveillance' product sold on a C2 sheet is a SURVEILLANCE product (sub-category SVS-C2-T1)
under the shipped product rules, not a C2 service: it must not be counted in the C2 scorecard, must
not make its buyer a C2 customer, and must stay in the global sell-out under its own type.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from transform_harness import DbtWarehouse

pytestmark = pytest.mark.integration

SNAPSHOT_ID = "c2-surveillance-snapshot"


def sheet(*rows: tuple[str, date, str, str, str, int, float]) -> pl.DataFrame:
    """A sheet as ingestion writes it: the workbook's own headers, amounts in USD."""
    names = ("PI", "InvDate", "Customer", "Country", "Product", "Quantity", "Total")
    columns = {name: [row[position] for row in rows] for position, name in enumerate(names)}
    return pl.DataFrame({**columns, "Currency": ["USD"] * len(rows)})


SHEETS = {
    "2024": sheet(("INV-1", date(2024, 2, 10), "Bolt SARL", "France", "RS822+", 1, 1500.0)),
    "2024-C2": sheet(
        ("INV-2", date(2024, 1, 15), "Acme GmbH", "Germany", "C2 Surveillance Basic", 4, 100.0),
        ("INV-3", date(2024, 1, 20), "Acme GmbH", "Germany", "C2_BACKUP_BUSINESS_1T", 3, 330.0),
    ),
}


def test_a_c2_surveillance_line_on_a_c2_sheet_is_not_counted_as_c2(dbt_warehouse: DbtWarehouse) -> None:
    dbt_warehouse.load_sheets(SNAPSHOT_ID, SHEETS)
    dbt_warehouse.build(SNAPSHOT_ID)

    raw = dbt_warehouse.fetch(
        "select source_sheet, product, product_type, sub_cat, is_c2, c2_service_family, c2_plan"
        " from raw.sales_lines order by source_sheet, source_row"
    )
    assert raw.rows() == [
        ("2024", "RS822+", "SERVER", "SVR-RM-GP-T1", False, None, None),
        ("2024-C2", "C2 SURVEILLANCE BASIC", "SURVEILLANCE", "SVS-C2-T1", False, None, None),
        ("2024-C2", "C2_BACKUP_BUSINESS_1T", "C2-SAAS", "C2-BACKUP-1T-BUSINESS", True, "BACKUP", "BUSINESS"),
    ]

    # Only the backup line is C2: one active customer, its one invoice a new order, 330 USD for 3 seats.
    scorecard = dbt_warehouse.fetch("select * from marts.c2_adoption_scorecard")
    assert scorecard.rows(named=True) == [
        {
            "month": date(2024, 1, 1),
            "quarter": date(2024, 1, 1),
            "c2_service_family": "BACKUP",
            "c2_plan": "BUSINESS",
            "region": "DE",
            "customer_tier": "Top 5",
            "active_customers": 1,
            "new_orders": 1,
            "revenue_usd": 330.0,
            "quantity": 3,
            "avg_seats": 3.0,
        }
    ]

    # The surveillance line stays in the global sell-out, under its own type and sub-category.
    sellout = dbt_warehouse.fetch(
        "select quarter, region, product_type, sub_cat, quantity, revenue_usd from marts.sellout_quarterly"
        " order by region, sub_cat"
    )
    assert sellout.rows() == [
        (date(2024, 1, 1), "DE", "C2-SAAS", "C2-BACKUP-1T-BUSINESS", 3, 330.0),
        (date(2024, 1, 1), "DE", "SURVEILLANCE", "SVS-C2-T1", 4, 100.0),
        (date(2024, 1, 1), "FR", "SERVER", "SVR-RM-GP-T1", 1, 1500.0),
    ]

    # Acme bought a non-C2 product too, so it is not a 'C2 only' customer.
    segments = dbt_warehouse.fetch(
        "select customer, segment, has_c2 from marts.commercial_activation_snapshot order by customer"
    )
    assert segments.rows() == [("Acme GmbH", "Other", True), ("Bolt SARL", "SVR-RM buyer", False)]
