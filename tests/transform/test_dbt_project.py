"""The dbt project (dbt/) on a hand-made snapshot: `dbt build` passes and the marts hold hand-computed numbers.

Runs the real `dbt build` (as a subprocess, like an operator would) against its own database in the
session's embedded PostgreSQL: the ops and transform migrations, the shipped mapping tables, and a dozen
raw.sales_lines rows in three snapshots ("good", an older "stale" one that must never leak in, and "broken").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from syno_shared import migrate
from syno_shared.embedded import Endpoints
from syno_transform.dbt_runner import dbt_environment

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DBT_DIR = REPO / "dbt"
MAPPING_DIR = REPO / "data" / "mapping_table"
DBT = Path(sys.executable).parent / "dbt"
DATABASE = "syno_dbt_project_test"
MARTS = {
    "sellout_quarterly": "quarter, region, country, product_type, sub_cat",
    "svr_rm_quarterly": "quarter, tier",
    "svr_rm_customer_quarterly": "quarter, customer, tier",
    "c2_adoption_scorecard": "month, c2_service_family, c2_plan, region, customer_tier",
    "commercial_activation_snapshot": "quarter, region, customer",
}
REF_FILES = {
    "ref.countries": "Mapped_Countries_with_Regions.csv",
    "ref.exchange_rates": "exchange_rates.csv",
    "ref.device_to_bay": "device_to_bay.csv",
    "ref.product_rules": "product_rules.csv",
    "ref.c2_keywords": "c2_keywords.csv",
}
D = dt.date


# sheet, row, invoice, invoice date, customer, country, region, quantity, revenue_usd, product type, sub-category
Line = tuple[str, int, str, dt.date | None, str, str, str, int, float | None, str, str]
GOOD: list[Line] = [
    ("2023", 1, "INV1", D(2023, 2, 10), "Acme GmbH", "Germany", "DE", 2, 2100.0, "SERVER", "SVR-RM-GP-T3"),
    ("2023", 2, "INV2", D(2023, 5, 5), "Acme GmbH", "germany", "DE", 3, 1050.0, "SERVER", "SVR-DT-DS-T2"),
    ("2023", 3, "INV3", D(2023, 3, 1), "Bolt SARL", "France", "FR", 1, 1500.0, "SERVER", "SVR-RM-GP-T1"),
    # unknown country and currency: kept, revenue unknown
    ("2023", 4, "INV4", D(2023, 8, 1), "Çafé Ltd", "Narnia", "UNMAPPED", 10, None, "DRIVE", "DRV-HD-T2"),
    # no invoice date: left out of every mart
    ("2023", 5, "INV5", None, "Acme GmbH", "Germany", "DE", 1, 1050.0, "SERVER", "SVR-RM-GP-T3"),
    ("2024", 1, "INV6", D(2024, 2, 15), "Acme GmbH", "Germany", "DE", 1, 1050.0, "SERVER", "SVR-RM-GP-T3"),
    # a return
    ("2024", 2, "INV7", D(2024, 2, 20), "Bolt SARL", "France", "FR", -1, -1500.0, "SERVER", "SVR-RM-GP-T1"),
    ("2024", 3, "INV8", D(2024, 4, 10), "Dune KK", "Japan", "JP", 1, 6700.0, "SERVER", "SVR-RM-GP-T4"),
    ("2024-C2", 1, "INV9", D(2024, 1, 15), "Acme GmbH", "Germany", "DE", 5, 500.0, "C2-SAAS", "C2-BACKUP-1T-BUSINESS"),
    (
        "2024-C2",
        2,
        "INV10",
        D(2024, 2, 3),
        "Echo Inc",
        "USA",
        "US",
        3,
        300.0,
        "C2-HYBRID",
        "C2-STORAGE-UNKNOWN-ADVANCED",
    ),
    (
        "2024-C2",
        3,
        "INV11",
        D(2024, 2, 3),
        "Echo Inc",
        "USA",
        "US",
        2,
        200.0,
        "C2-HYBRID",
        "C2-STORAGE-UNKNOWN-ADVANCED",
    ),
    ("2024-C2", 4, "INV12", D(2024, 5, 20), "Acme GmbH", "Germany", "DE", 1, 100.0, "C2-SAAS", "C2-BACKUP-1T-BUSINESS"),
]
STALE: list[Line] = [("2023", 1, "OLD", D(2023, 2, 1), "Ghost AG", "Germany", "DE", 99, 1e9, "SERVER", "SVR-RM-GP-T2")]
BROKEN: list[Line] = [
    *GOOD,
    ("2024", 9, "BAD", D(2024, 3, 1), "Acme GmbH", "Germany", "DE", 1, 1.0, "SERVER", "SVR-RM-GP-T9"),
]


def raw_row(snapshot: str, line: Line) -> dict[str, Any]:
    """A raw.sales_lines row as the loader writes it (tier and C2 fields read off the sub-category)."""
    sheet, row, invoice, date, customer, country, region, quantity, revenue_usd, product_type, sub_cat = line
    is_c2 = product_type.startswith("C2-")
    family, capacity, plan = sub_cat.split("-")[1:] if is_c2 else (None, None, None)
    return {
        "snapshot_id": snapshot,
        "source_sheet": sheet,
        "source_row": row,
        "sheet_kind": "c2" if is_c2 else "hardware",
        "sheet_year": int(sheet[:4]),
        "invoice_number": invoice,
        "invoice_date": date,
        "customer": customer,
        "country": country,
        "region": region,
        "quantity": quantity,
        "revenue_usd": revenue_usd,
        "product_type": product_type,
        "sub_cat": sub_cat,
        "tier": sub_cat.rsplit("-", 1)[1] if sub_cat.startswith("SVR-RM-") else None,
        "is_c2": is_c2,
        "c2_service_family": family,
        "c2_capacity": capacity,
        "c2_plan": plan,
        "is_country_unmapped": region == "UNMAPPED",
        "is_currency_unmapped": revenue_usd is None,
        "is_product_unmapped": False,
    }


def all_snapshots() -> list[dict[str, Any]]:
    snapshots = {"good": GOOD, "stale": STALE, "broken": BROKEN}
    return [raw_row(snapshot, line) for snapshot, lines in snapshots.items() for line in lines]


@dataclass
class Warehouse:
    env: dict[str, str]
    dsn: str
    target: Path

    def dbt(self, *args: str) -> subprocess.CompletedProcess[str]:
        paths = ["--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)]
        paths += ["--target-path", str(self.target), "--log-path", str(self.target / "logs")]
        return subprocess.run(
            [str(DBT), *args, *paths, "--no-use-colors"], env=self.env, capture_output=True, text=True, timeout=300
        )

    def run_results(self) -> dict[str, str]:
        results = json.loads((self.target / "run_results.json").read_text())["results"]
        return {result["unique_id"]: result["status"] for result in results}

    def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg2.connect(self.dsn) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall()
        connection.close()
        return rows

    def marts(self) -> dict[str, list[tuple[Any, ...]]]:
        return {name: self.fetch(f"select * from marts.{name} order by {key}") for name, key in MARTS.items()}


def load(dsn: str) -> None:
    migrate.apply_migrations(dsn, migrate.installed_sources(("ops", "transform")))
    with psycopg2.connect(dsn) as connection, connection.cursor() as cursor:
        for table, file_name in REF_FILES.items():
            content = (MAPPING_DIR / file_name).read_bytes()
            with (MAPPING_DIR / file_name).open() as csv:
                cursor.copy_expert(f"copy {table} from stdin with (format csv, header true)", csv)
            cursor.execute(
                "insert into ref.mapping_versions (file_name, sha256, rows) values (%s, %s, %s)",
                (file_name, hashlib.sha256(content).hexdigest(), content.count(b"\n") - 1),
            )
        rows = all_snapshots()
        columns = list(rows[0])
        cursor.executemany(
            f"insert into raw.sales_lines ({', '.join(columns)}) values ({', '.join(['%s'] * len(columns))})",
            [tuple(row[column] for column in columns) for row in rows],
        )
    connection.close()


@pytest.fixture(scope="module")
def warehouse(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """A database of its own in the session's PostgreSQL, loaded with the three snapshots."""
    env = {**os.environ, **dbt_environment(endpoints.pg_dsn), "SYNO_DBT_DBNAME": DATABASE}
    env.pop("SYNO_DBT_SNAPSHOT_ID", None)
    admin = psycopg2.connect(endpoints.pg_dsn)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f"drop database if exists {DATABASE}")
        cursor.execute(f"create database {DATABASE}")
    dsn = urlunsplit(urlsplit(endpoints.pg_dsn)._replace(path=f"/{DATABASE}"))
    load(dsn)
    yield Warehouse(env=env, dsn=dsn, target=tmp_path_factory.mktemp("dbt-target"))
    with admin.cursor() as cursor:
        cursor.execute(f"drop database if exists {DATABASE} with (force)")
    admin.close()


@pytest.fixture(scope="module")
def good_build(warehouse: Warehouse) -> dict[str, list[tuple[Any, ...]]]:
    """`dbt build` of the good snapshot; the marts it leaves."""
    build = warehouse.dbt("build", "--vars", '{"snapshot_id": "good"}')
    assert build.returncode == 0, build.stdout[-5000:]
    return warehouse.marts()


def test_build_runs_every_model_test_and_unit_test(warehouse: Warehouse, good_build: object) -> None:
    """Every model, data test and unit test of the project ran and passed on the good snapshot."""
    statuses = warehouse.run_results()
    assert {status for uid, status in statuses.items() if uid.split(".")[0] in ("test", "unit_test")} == {"pass"}
    assert {status for uid, status in statuses.items() if uid.startswith("model.")} == {"success"}
    built = sorted(uid.split(".")[-1] for uid, status in statuses.items() if uid.startswith("model."))
    assert built == sorted(path.stem for path in (DBT_DIR / "models").rglob("*.sql"))
    assert sum(uid.startswith("unit_test.") for uid in statuses) >= 8


def test_sellout_quarterly(good_build: dict[str, list[tuple[Any, ...]]]) -> None:
    """Net quantity and USD revenue by quarter, region, country (mapping spelling), type and sub-category;
    an unmapped currency leaves revenue unknown; an undated line and the stale snapshot are left out."""
    assert good_build["sellout_quarterly"] == [
        (D(2023, 1, 1), "DE", "Germany", "SERVER", "SVR-RM-GP-T3", 2, 2100.0, 1),
        (D(2023, 1, 1), "FR", "France", "SERVER", "SVR-RM-GP-T1", 1, 1500.0, 1),
        (D(2023, 4, 1), "DE", "Germany", "SERVER", "SVR-DT-DS-T2", 3, 1050.0, 1),
        (D(2023, 7, 1), "UNMAPPED", "Narnia", "DRIVE", "DRV-HD-T2", 10, None, 1),
        (D(2024, 1, 1), "DE", "Germany", "C2-SAAS", "C2-BACKUP-1T-BUSINESS", 5, 500.0, 1),
        (D(2024, 1, 1), "DE", "Germany", "SERVER", "SVR-RM-GP-T3", 1, 1050.0, 1),
        (D(2024, 1, 1), "FR", "France", "SERVER", "SVR-RM-GP-T1", -1, -1500.0, 1),
        (D(2024, 1, 1), "US", "USA", "C2-HYBRID", "C2-STORAGE-UNKNOWN-ADVANCED", 5, 500.0, 1),
        (D(2024, 4, 1), "DE", "Germany", "C2-SAAS", "C2-BACKUP-1T-BUSINESS", 1, 100.0, 1),
        (D(2024, 4, 1), "JP", "Japan", "SERVER", "SVR-RM-GP-T4", 1, 6700.0, 1),
    ]


def test_svr_rm_quarterly_is_every_tier_in_every_quarter(good_build: dict[str, list[tuple[Any, ...]]]) -> None:
    """Each tier seen gets a row in every quarter from the first SVR-RM sale to the last quarter."""
    sold = {
        (D(2023, 1, 1), "T1"): (1, 1500.0),
        (D(2023, 1, 1), "T3"): (2, 2100.0),
        (D(2024, 1, 1), "T1"): (-1, -1500.0),
        (D(2024, 1, 1), "T3"): (1, 1050.0),
        (D(2024, 4, 1), "T4"): (1, 6700.0),
    }
    quarters = [D(2023, 1, 1), D(2023, 4, 1), D(2023, 7, 1), D(2023, 10, 1), D(2024, 1, 1), D(2024, 4, 1)]
    expected = [(q, tier, *sold.get((q, tier), (0, 0.0))) for q in quarters for tier in ("T1", "T3", "T4")]
    assert good_build["svr_rm_quarterly"] == expected


def test_svr_rm_customer_quarterly_ranks_on_trailing_four_quarters(
    good_build: dict[str, list[tuple[Any, ...]]],
) -> None:
    """In 2024-Q2 the window is 2023-Q3..2024-Q2: Dune (6700) > Acme (1050) > Bolt (-1500)."""
    assert good_build["svr_rm_customer_quarterly"] == [
        (D(2023, 1, 1), "Acme GmbH", "T3", 2, 2100.0, 1, True),
        (D(2023, 1, 1), "Bolt SARL", "T1", 1, 1500.0, 2, True),
        (D(2024, 1, 1), "Acme GmbH", "T3", 1, 1050.0, 1, True),
        (D(2024, 1, 1), "Bolt SARL", "T1", -1, -1500.0, 2, True),
        (D(2024, 4, 1), "Dune KK", "T4", 1, 6700.0, 1, True),
    ]


def test_c2_adoption_scorecard(good_build: dict[str, list[tuple[Any, ...]]]) -> None:
    """Echo's two invoices in its first C2 month are new orders; Acme's second C2 month has none."""
    assert good_build["c2_adoption_scorecard"] == [
        (D(2024, 1, 1), D(2024, 1, 1), "BACKUP", "BUSINESS", "DE", "Top 5", 1, 1, 500.0, 5, 5.0),
        (D(2024, 2, 1), D(2024, 1, 1), "STORAGE", "ADVANCED", "US", "Top 5", 1, 2, 500.0, 5, 5.0),
        (D(2024, 5, 1), D(2024, 4, 1), "BACKUP", "BUSINESS", "DE", "Top 5", 1, 0, 100.0, 1, 1.0),
    ]


def test_commercial_activation_snapshot(good_build: dict[str, list[tuple[Any, ...]]]) -> None:
    """A row per customer x region x quarter from the first quarter to a year after the last sale (capped
    at the last quarter): Bolt is dormant a year after its only purchase, Echo new then declining. Each customer's
    country in its region (Acme's "germany" under the mapping's spelling, Çafé's unmapped Narnia as written) and
    its last order up to the quarter's end: Bolt's return of February 2024 is no order, Acme's C2 order of
    15 January 2024 comes before its hardware order of 15 February. C2 revenue: Acme's 500 and 100, Echo's
    300 + 200."""
    rm, c2only, other = "SVR-RM buyer", "C2 only", "Other"
    assert good_build["commercial_activation_snapshot"] == [
        (D(2023, 1, 1), "DE", "Acme GmbH", rm, 2100.0, None, None, False, "new", "Germany", D(2023, 2, 10), 0.0),
        (D(2023, 1, 1), "FR", "Bolt SARL", rm, 1500.0, None, None, False, "new", "France", D(2023, 3, 1), 0.0),
        (D(2023, 4, 1), "DE", "Acme GmbH", rm, 1050.0, -0.5, None, False, "decline", "Germany", D(2023, 5, 5), 0.0),
        (D(2023, 4, 1), "FR", "Bolt SARL", rm, 0.0, -1.0, None, False, "decline", "France", D(2023, 3, 1), 0.0),
        (D(2023, 7, 1), "DE", "Acme GmbH", rm, 0.0, -1.0, None, False, "decline", "Germany", D(2023, 5, 5), 0.0),
        (D(2023, 7, 1), "FR", "Bolt SARL", rm, 0.0, None, None, False, "steady", "France", D(2023, 3, 1), 0.0),
        (D(2023, 7, 1), "UNMAPPED", "Çafé Ltd", other, 0.0, None, None, False, "steady", "Narnia", D(2023, 8, 1), 0.0),
        (D(2023, 10, 1), "DE", "Acme GmbH", rm, 0.0, None, None, False, "steady", "Germany", D(2023, 5, 5), 0.0),
        (D(2023, 10, 1), "FR", "Bolt SARL", rm, 0.0, None, None, False, "steady", "France", D(2023, 3, 1), 0.0),
        (D(2023, 10, 1), "UNMAPPED", "Çafé Ltd", other, 0.0, None, None, False, "steady", "Narnia", D(2023, 8, 1), 0.0),
        (
            D(2024, 1, 1),
            "DE",
            "Acme GmbH",
            rm,
            1550.0,
            None,
            (1550 - 2100) / 2100,
            True,
            "decline",
            "Germany",
            D(2024, 2, 15),
            500.0,
        ),
        (D(2024, 1, 1), "FR", "Bolt SARL", rm, -1500.0, None, -2.0, False, "dormant", "France", D(2023, 3, 1), 0.0),
        (D(2024, 1, 1), "UNMAPPED", "Çafé Ltd", other, 0.0, None, None, False, "steady", "Narnia", D(2023, 8, 1), 0.0),
        (D(2024, 1, 1), "US", "Echo Inc", c2only, 500.0, None, None, True, "new", "USA", D(2024, 2, 3), 500.0),
        (
            D(2024, 4, 1),
            "DE",
            "Acme GmbH",
            rm,
            100.0,
            (100 - 1550) / 1550,
            (100 - 1050) / 1050,
            True,
            "decline",
            "Germany",
            D(2024, 5, 20),
            100.0,
        ),
        (D(2024, 4, 1), "FR", "Bolt SARL", rm, 0.0, None, None, False, "steady", "France", D(2023, 3, 1), 0.0),
        (D(2024, 4, 1), "JP", "Dune KK", rm, 6700.0, None, None, False, "new", "Japan", D(2024, 4, 10), 0.0),
        (D(2024, 4, 1), "UNMAPPED", "Çafé Ltd", other, 0.0, None, None, False, "steady", "Narnia", D(2023, 8, 1), 0.0),
        (D(2024, 4, 1), "US", "Echo Inc", c2only, 0.0, -1.0, None, True, "decline", "USA", D(2024, 2, 3), 0.0),
    ]


def test_a_tier_outside_t1_t5_fails_the_staging_test_and_keeps_the_marts(
    warehouse: Warehouse, good_build: dict[str, list[tuple[Any, ...]]]
) -> None:
    """A T9 line fails accepted_values on stg_raw__sales_lines.tier; no mart is rebuilt."""
    build = warehouse.dbt("build", "--vars", '{"snapshot_id": "broken"}')
    assert build.returncode == 1
    statuses = warehouse.run_results()
    failed = sorted(uid for uid, status in statuses.items() if status in ("fail", "error"))
    assert [uid.rsplit(".", 1)[0] for uid in failed] == [
        "test.syno.accepted_values_stg_raw__sales_lines_tier__T1__T2__T3__T4__T5"
    ]
    assert {statuses[f"model.syno.{name}"] for name in MARTS} == {"skipped"}
    assert warehouse.marts() == good_build


def test_a_missing_snapshot_id_fails_with_a_clear_message(warehouse: Warehouse) -> None:
    """Without var snapshot_id (or SYNO_DBT_SNAPSHOT_ID) the staging model refuses to compile."""
    compiled = warehouse.dbt("compile", "--select", "stg_raw__sales_lines")
    assert compiled.returncode != 0
    assert "stg_raw__sales_lines needs the snapshot to build" in compiled.stdout
