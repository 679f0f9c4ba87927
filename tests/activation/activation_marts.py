"""The snapshot behind the activation tests that read the warehouse: raw lines whose marts are worked out by
hand below, the marts the project's own `dbt build` makes of them (as the transform runs it), and forecasts of
two forecast runs, in a database the tests clone.

The snapshot's marts are set aside in a schema of their own (SNAPSHOT_MARTS, the schema forecast.published
names), and the stable names (`marts.*`) show other, empty tables, as when another snapshot has been published
since: activation must read the schema its event names.

Imported by conftest.py (fixtures), test_warehouse.py and test_handlers.py (the truth the marts hold).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import polars as pl

from syno_shared import db, migrate
from syno_transform import warehouse as transform_warehouse
from syno_transform.dbt_runner import dbt_environment
from syno_transform.reference import load_reference

REPO = Path(__file__).resolve().parents[2]
DBT_DIR = REPO / "dbt"
DBT = Path(sys.executable).parent / "dbt"
MAPPING_DIR = REPO / "data" / "mapping_table"
SNAPSHOT_ID = "activation-test-snapshot"
SNAPSHOT_MARTS = "marts_activation_test"  # where this snapshot's marts are (forecast.published marts_schema)
MART_TABLES = ("commercial_activation_snapshot", "c2_adoption_scorecard", "svr_rm_customer_quarterly")

Y_AGO, Q4_24, Q1, Q2, Q3, Q4 = (
    date(2024, 7, 1), date(2024, 10, 1), date(2025, 1, 1), date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1)
)  # fmt: skip

RS_T1 = ("RS822+", "SERVER", "SVR-RM-GP-T1", "T1", None)
RS_T2 = ("RS2423+", "SERVER", "SVR-RM-GP-T2", "T2", None)
DESKTOP = ("DS923+", "SERVER", "SVR-DT-DS-T2", None, None)
DRIVE = ("HAT3310-8T", "DRIVE", "DRV-HD-T1", None, None)
C2_BACKUP = ("C2_BACKUP_BUSINESS_1T", "C2-SAAS", "C2-BACKUP-1T-BUSINESS", None, ("BACKUP", "1T", "BUSINESS"))
C2_STORAGE = ("C2 STORAGE ADVANCED 5T", "C2-HYBRID", "C2-STORAGE-5T-ADVANCED", None, ("STORAGE", "5T", "ADVANCED"))
REGIONS = {"FR": "France", "DE": "Germany"}

# (invoice date, customer, region, product, quantity, revenue_usd): the whole snapshot.
LINES: list[tuple[date, str, str, tuple[Any, ...], int, float]] = [
    (date(2024, 8, 14), "Edda", "DE", DRIVE, 40, 8_000.0),  # a year ago, then nothing: dormant in Q3 2025
    (date(2025, 5, 15), "Acme", "FR", RS_T1, 2, 100_000.0),
    (date(2025, 8, 15), "Acme", "FR", RS_T1, 3, 125_000.0),
    (date(2025, 4, 10), "Beta", "FR", RS_T2, 1, 40_000.0),
    (date(2025, 4, 20), "Beta", "FR", C2_BACKUP, 5, 10_000.0),
    (date(2025, 7, 10), "Beta", "FR", RS_T2, 1, 30_000.0),
    (date(2025, 7, 20), "Beta", "FR", C2_BACKUP, 5, 10_000.0),
    (date(2025, 9, 10), "Beta", "FR", RS_T2, -1, -10_000.0),  # a unit returned: no SVR-RM bought in Q3, net
    (date(2025, 6, 2), "Cielo", "FR", DESKTOP, 4, 20_000.0),
    (date(2025, 7, 3), "Cielo", "FR", DESKTOP, 6, 30_000.0),
    (date(2025, 9, 1), "Dune", "FR", RS_T1, 1, 50_000.0),
    (date(2025, 4, 5), "Fjord", "DE", DRIVE, 100, 20_000.0),
    (date(2025, 8, 5), "Fjord", "DE", DRIVE, 50, 10_000.0),
    (date(2025, 5, 6), "Gala", "DE", C2_STORAGE, 10, 10_000.0),
    (date(2025, 7, 6), "Gala", "DE", C2_STORAGE, 5, 5_000.0),
    (date(2025, 6, 7), "Hugo", "FR", RS_T1, 1, 10_000.0),
    (date(2025, 9, 7), "Hugo", "FR", RS_T1, 1, 10_500.0),
]

# marts.commercial_activation_snapshot, worked out from LINES: every customer and region from its first quarter
# to the snapshot's last (Q3 2025; Edda's year after its last purchase ends there too), 0 without a sale; changes
# against the previous quarter and the same quarter a year earlier when that base is positive; segment from
# everything bought up to the quarter; signal as the mart's description says (threshold 20%); the country of the
# customer's lines in the region; the last invoice with a positive quantity up to the quarter's end (Beta's
# return of 10 September is no order); the revenue of its C2 lines.
DE, FR = "Germany", "France"
SNAPSHOT_ROWS = [
    (Y_AGO, "DE", "Edda", "Other", 8_000.0, None, None, False, "new", DE, date(2024, 8, 14), 0.0),
    (Q4_24, "DE", "Edda", "Other", 0.0, -1.0, None, False, "decline", DE, date(2024, 8, 14), 0.0),
    (Q1, "DE", "Edda", "Other", 0.0, None, None, False, "steady", DE, date(2024, 8, 14), 0.0),
    (Q2, "DE", "Edda", "Other", 0.0, None, None, False, "steady", DE, date(2024, 8, 14), 0.0),
    (Q3, "DE", "Edda", "Other", 0.0, None, -1.0, False, "dormant", DE, date(2024, 8, 14), 0.0),
    (Q2, "DE", "Fjord", "Other", 20_000.0, None, None, False, "new", DE, date(2025, 4, 5), 0.0),
    (Q3, "DE", "Fjord", "Other", 10_000.0, -0.5, None, False, "decline", DE, date(2025, 8, 5), 0.0),
    (Q2, "DE", "Gala", "C2 only", 10_000.0, None, None, True, "new", DE, date(2025, 5, 6), 10_000.0),
    (Q3, "DE", "Gala", "C2 only", 5_000.0, -0.5, None, True, "decline", DE, date(2025, 7, 6), 5_000.0),
    (Q2, "FR", "Acme", "SVR-RM buyer", 100_000.0, None, None, False, "new", FR, date(2025, 5, 15), 0.0),
    (Q3, "FR", "Acme", "SVR-RM buyer", 125_000.0, 0.25, None, False, "growth", FR, date(2025, 8, 15), 0.0),
    (Q2, "FR", "Beta", "SVR-RM buyer", 50_000.0, None, None, True, "new", FR, date(2025, 4, 20), 10_000.0),
    (Q3, "FR", "Beta", "SVR-RM buyer", 30_000.0, -0.4, None, True, "decline", FR, date(2025, 7, 20), 10_000.0),
    (Q2, "FR", "Cielo", "Desktop only", 20_000.0, None, None, False, "new", FR, date(2025, 6, 2), 0.0),
    (Q3, "FR", "Cielo", "Desktop only", 30_000.0, 0.5, None, False, "growth", FR, date(2025, 7, 3), 0.0),
    (Q3, "FR", "Dune", "SVR-RM buyer", 50_000.0, None, None, False, "new", FR, date(2025, 9, 1), 0.0),
    (Q2, "FR", "Hugo", "SVR-RM buyer", 10_000.0, None, None, False, "new", FR, date(2025, 6, 7), 0.0),
    (Q3, "FR", "Hugo", "SVR-RM buyer", 10_500.0, 0.05, None, False, "cross-sell C2", FR, date(2025, 9, 7), 0.0),
]
# (month, quarter, c2_service_family, c2_plan, region, active_customers, revenue_usd) of
# marts.c2_adoption_scorecard: one row per month with C2 (one customer buying each time).
C2_SCORECARD_ROWS = [
    (date(2025, 4, 1), Q2, "BACKUP", "BUSINESS", "FR", 1, 10_000.0),
    (date(2025, 7, 1), Q3, "BACKUP", "BUSINESS", "FR", 1, 10_000.0),
    (date(2025, 5, 1), Q2, "STORAGE", "ADVANCED", "DE", 1, 10_000.0),
    (date(2025, 7, 1), Q3, "STORAGE", "ADVANCED", "DE", 1, 5_000.0),
]
# (quarter, customer, tier, quantity, revenue_usd) of marts.svr_rm_customer_quarterly: Beta's Q3 return nets its
# Q3 purchase to quantity 0 (revenue 30K - 10K).
SVR_RM_REVENUE_ROWS = [
    (Q2, "Acme", "T1", 2, 100_000.0),
    (Q2, "Beta", "T2", 1, 40_000.0),
    (Q2, "Hugo", "T1", 1, 10_000.0),
    (Q3, "Acme", "T1", 3, 125_000.0),
    (Q3, "Beta", "T2", 0, 20_000.0),
    (Q3, "Dune", "T1", 1, 50_000.0),
    (Q3, "Hugo", "T1", 1, 10_500.0),
]
# Customers buying SVR-RM (net quantity > 0) in a quarter, where they had revenue: Beta's Q3 return cancels its
# Q3 purchase.
SVR_RM_CUSTOMERS_ROWS = [(Q2, "FR", "Acme"), (Q2, "FR", "Beta"), (Q2, "FR", "Hugo")]
SVR_RM_CUSTOMERS_ROWS += [(Q3, "FR", "Acme"), (Q3, "FR", "Dune"), (Q3, "FR", "Hugo")]
C2_CUSTOMERS_ROWS = [(Q2, "Beta"), (Q2, "Gala"), (Q3, "Beta"), (Q3, "Gala")]

FORECAST_RUN = "run-f1"
INSERT_SELLOUT = (
    "insert into forecast.sellout (forecast_run_id, snapshot_id, cohort, target_quarter, metric, point, model,"
    " reason, region) values ($1, $2, 'region', $3, $4, $5, 'ets', '', $6)"
)
SELLOUT_ROWS = [
    (FORECAST_RUN, Q4, "revenue_usd", 184_000.0, "FR"),
    (FORECAST_RUN, Q4, "quantity", 99.0, "FR"),
    ("run-f0", Q4, "revenue_usd", 1.0, "DE"),  # an older forecast run of the same snapshot
]
INSERT_SVR_RM = (
    "insert into forecast.svr_rm (forecast_run_id, snapshot_id, cohort, target_quarter, metric, point, model,"
    " reason, tier, customer) values ($1, $2, $3, $4, $5, $6, 'ets', '', $7, $8)"
)
SVR_RM_FORECAST_ROWS = [
    (FORECAST_RUN, "customer", Q4, "revenue_usd", 130_000.0, "TOTAL", "Acme"),
    (FORECAST_RUN, "customer", Q4, "quantity", 4.0, "TOTAL", "Acme"),
    (FORECAST_RUN, "overall", Q4, "revenue_usd", 500_000.0, "T1", None),
]


def raw_lines() -> pl.DataFrame:
    """raw.sales_lines rows as the transform loads them (already cleaned and classified)."""
    rows: list[dict[str, Any]] = []
    for number, (day, customer, region, product, quantity, revenue) in enumerate(LINES, start=1):
        name, product_type, sub_cat, tier, c2 = product
        family, capacity, plan = c2 or (None, None, None)
        rows.append(
            {
                "snapshot_id": SNAPSHOT_ID,
                "source_sheet": f"{day.year}-C2" if c2 else str(day.year),
                "source_row": number,
                "sheet_kind": "c2" if c2 else "hardware",
                "sheet_year": day.year,
                "invoice_number": f"INV{number}",
                "invoice_date": day,
                "customer": customer,
                "country": REGIONS[region],
                "region": region,
                "product": name,
                "product_type": product_type,
                "sub_cat": sub_cat,
                "tier": tier,
                "is_c2": c2 is not None,
                "c2_service_family": family,
                "c2_capacity": capacity,
                "c2_plan": plan,
                "quantity": quantity,
                "currency": "USD",
                "revenue_usd": revenue,
                "is_country_unmapped": False,
                "is_currency_unmapped": False,
                "is_product_unmapped": False,
            }
        )
    return pl.DataFrame(rows, schema_overrides={"quantity": pl.Int64, "revenue_usd": pl.Float64})


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


async def set_aside_and_add_forecasts(dsn: str) -> None:
    """The snapshot's marts moved to a schema of their own, empty tables under the stable names, and the
    forecasts of two forecast runs of the snapshot."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f"alter schema marts rename to {SNAPSHOT_MARTS}; create schema marts")
        for table in MART_TABLES:
            await connection.execute(f"create table marts.{table} (like {SNAPSHOT_MARTS}.{table})")
        await connection.executemany(INSERT_SELLOUT, [(run, SNAPSHOT_ID, *rest) for run, *rest in SELLOUT_ROWS])
        await connection.executemany(INSERT_SVR_RM, [(run, SNAPSHOT_ID, *rest) for run, *rest in SVR_RM_FORECAST_ROWS])
    finally:
        await connection.close()


def build_marts_database(admin_dsn: str, target: Path) -> str:
    """A new database with every migration, the raw lines above, the marts `dbt build` makes of them (set aside
    in SNAPSHOT_MARTS) and the forecasts."""
    name = f"activation_marts_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(admin_dsn, f"create database {name}"))
    dsn = database_dsn(admin_dsn, name)
    migrate.apply_migrations(dsn, migrate.installed_sources(("ops", "transform", "forecast", "activation")))
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
    asyncio.run(set_aside_and_add_forecasts(dsn))
    return name
