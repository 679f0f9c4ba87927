"""The snapshot behind the forecast stage tests: raw lines whose quarterly totals are known, and the marts the
project's own `dbt build` makes of them (as the transform runs it), in a database the tests clone.

Imported by conftest.py (fixtures) and test_forecast_stage.py (the truth the marts must hold).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import polars as pl

from syno_shared import db, migrate
from syno_shared.quarters import add_quarters
from syno_transform import warehouse as transform_warehouse
from syno_transform.dbt_runner import dbt_environment
from syno_transform.reference import load_reference

REPO = Path(__file__).resolve().parents[2]
DBT_DIR = REPO / "dbt"
DBT = Path(sys.executable).parent / "dbt"
MAPPING_DIR = REPO / "data" / "mapping_table"
SNAPSHOT_ID = hashlib.sha256(b"forecast-test-snapshot").hexdigest()  # a snapshot id is a workbook's sha256
FIRST = date(2022, 1, 1)
LAST_COMPLETE = date(2024, 10, 1)  # twelve complete quarters, 2022Q1..2024Q4
TARGET = date(2025, 1, 1)  # the partial current quarter, and the one forecast
C2_JUMP = 2000.0  # C2 revenue of the last complete quarter: far off its seasonal pattern


def quarters() -> list[date]:
    return [add_quarters(FIRST, step) for step in range(12)]


def season(quarter: date) -> int:
    """1, 2, 3, 4 for Q1..Q4: every series below repeats a yearly shape."""
    return (quarter.month - 1) // 3 + 1


# (customer, country, region, sub-category, tier) -> (quantity, revenue_usd) in a quarter of a given season
HARDWARE = {
    ("Acme Storage", "Germany", "DE", "SVR-RM-GP-T1", "T1"): lambda season: (10 * season, 100.0 * season),
    ("Börse Daten GmbH", "Germany", "DE", "SVR-RM-GP-T2", "T2"): lambda season: (season, 200.0 * season),
}
PARTIAL = {"Acme Storage": (3, 30.0), "Börse Daten GmbH": (1, 90.0)}  # 2025Q1 to date: never trained on


def c2_month_revenue(quarter: date) -> float:
    """Echo Inc's C2 Storage revenue in each month of a quarter (one line a month)."""
    return C2_JUMP / 3 if quarter == LAST_COMPLETE else 30.0 * season(quarter)


def raw_lines() -> pl.DataFrame:
    """raw.sales_lines rows as the transform loads them (already cleaned and classified)."""
    rows: list[dict[str, Any]] = []

    def line(sheet: str, day: date, customer: str, country: str, region: str, sub_cat: str, **values: Any) -> None:
        is_c2 = sheet.endswith("-C2")
        rows.append(
            {
                "snapshot_id": SNAPSHOT_ID,
                "source_sheet": sheet,
                "source_row": sum(row["source_sheet"] == sheet for row in rows) + 1,
                "sheet_kind": "c2" if is_c2 else "hardware",
                "sheet_year": day.year,
                "invoice_number": f"INV{len(rows) + 1}",
                "invoice_date": day,
                "customer": customer,
                "country": country,
                "region": region,
                "product_type": "C2-HYBRID" if is_c2 else "SERVER",
                "sub_cat": sub_cat,
                "tier": values.pop("tier", None),
                "is_c2": is_c2,
                "c2_service_family": "STORAGE" if is_c2 else None,
                "c2_capacity": "1T" if is_c2 else None,
                "c2_plan": "ADVANCED" if is_c2 else None,
                "is_country_unmapped": False,
                "is_currency_unmapped": False,
                "is_product_unmapped": False,
                **values,
            }
        )

    for quarter in quarters():
        for (customer, country, region, sub_cat, tier), amounts in HARDWARE.items():
            quantity, revenue = amounts(season(quarter))
            day = quarter + timedelta(days=14)
            line(
                str(quarter.year),
                day,
                customer,
                country,
                region,
                sub_cat,
                tier=tier,
                quantity=quantity,
                revenue_usd=revenue,
            )
        for month in range(3):
            day = date(quarter.year, quarter.month + month, 5)
            line(
                f"{quarter.year}-C2",
                day,
                "Echo Inc",
                "USA",
                "US",
                "C2-STORAGE-1T-ADVANCED",
                quantity=1,
                revenue_usd=c2_month_revenue(quarter),
            )
    for (customer, country, region, sub_cat, tier), _ in HARDWARE.items():
        quantity, revenue = PARTIAL[customer]
        line(
            "2025",
            date(2025, 1, 10),
            customer,
            country,
            region,
            sub_cat,
            tier=tier,
            quantity=quantity,
            revenue_usd=revenue,
        )
    return pl.DataFrame(rows, schema_overrides={"quantity": pl.Int64, "revenue_usd": pl.Float64})  # fmt: skip


def expected_training_set() -> pl.DataFrame:
    """The series the marts must yield, computed from the truth above (complete quarters, then 2025Q1)."""
    rows: list[tuple[str, date, float]] = []
    for quarter in quarters():
        season_number = season(quarter)
        per_tier = {tier: amounts(season_number) for (_, _, _, _, tier), amounts in HARDWARE.items()}
        per_customer = {key[0]: amounts(season_number) for key, amounts in HARDWARE.items()}
        for tier, (quantity, revenue) in {**per_tier, "TOTAL": (11 * season_number, 300.0 * season_number)}.items():
            rows += [(f"overall|{tier}|quantity", quarter, quantity), (f"overall|{tier}|revenue_usd", quarter, revenue)]
        for customer, (quantity, revenue) in per_customer.items():
            rows += [(f"customer|{customer}|quantity", quarter, quantity)]
            rows += [(f"customer|{customer}|revenue_usd", quarter, revenue)]
        rows += [
            ("c2|STORAGE|active_customers", quarter, 1),
            ("c2|STORAGE|revenue_usd", quarter, 3 * c2_month_revenue(quarter)),
        ]
        rows += [
            ("region|DE|revenue_usd", quarter, 300.0 * season_number),
            ("region|US|revenue_usd", quarter, 3 * c2_month_revenue(quarter)),
        ]
    rows += [("overall|T1|quantity", TARGET, 3), ("overall|T1|revenue_usd", TARGET, 30.0)]
    rows += [("overall|T2|quantity", TARGET, 1), ("overall|T2|revenue_usd", TARGET, 90.0)]
    rows += [("overall|TOTAL|quantity", TARGET, 4), ("overall|TOTAL|revenue_usd", TARGET, 120.0)]
    rows += [("customer|Acme Storage|quantity", TARGET, 3), ("customer|Acme Storage|revenue_usd", TARGET, 30.0)]
    rows += [("customer|Börse Daten GmbH|quantity", TARGET, 1), ("customer|Börse Daten GmbH|revenue_usd", TARGET, 90.0)]
    rows += [("region|DE|revenue_usd", TARGET, 120.0)]
    schema = {"series_id": pl.String, "quarter": pl.Date, "value": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row").sort("series_id", "quarter")  # fmt: skip


def database_dsn(dsn: str, database: str) -> str:
    """The same server, another database (the DSN's path names the database)."""
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{database}"))


async def execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def load_snapshot(dsn: str) -> None:
    """The shipped mapping tables and the raw lines, loaded as the transform loads them."""
    connection = await asyncpg.connect(dsn)
    try:
        await transform_warehouse.load_reference(connection, load_reference(MAPPING_DIR))
        await db.copy_frame(connection, "raw", "sales_lines", raw_lines())
    finally:
        await connection.close()


def build_marts_database(admin_dsn: str, target: Path) -> str:
    """A new database with every migration, the raw lines above and the marts `dbt build` makes of them."""
    name = f"forecast_marts_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(admin_dsn, f"create database {name}"))
    dsn = database_dsn(admin_dsn, name)
    migrate.apply_migrations(dsn, migrate.installed_sources(("ops", "transform", "forecast")))
    asyncio.run(load_snapshot(dsn))
    environment = {**os.environ, **dbt_environment(dsn)}
    environment.pop("SYNO_DBT_SNAPSHOT_ID", None)
    paths = ["--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--target-path", str(target)]
    build = subprocess.run(
        [str(DBT), "build", "--vars", json.dumps({"snapshot_id": SNAPSHOT_ID}), *paths, "--log-path", str(target)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-5000:]
    return name
