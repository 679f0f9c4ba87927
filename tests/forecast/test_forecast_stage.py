"""The forecast stage from marts to forecast tables, over the real embedded NATS and PostgreSQL.

The marts are built by the project's own dbt (`dbt build`, as the transform runs it) from a handful of
raw.sales_lines rows whose quarterly totals the test knows: once per module, in a template database that
each test clones, so every test has a database of its own. Replicas run in this process: a broker with
the work-queue subscriber and a thread-mode ``BatchRunner`` each.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from syno_forecast import warehouse
from syno_forecast.handlers import forecast_snapshot, register_worker
from syno_forecast.runner import BatchRunner, evaluate_batch
from syno_forecast.series import build_quarterly_series
from syno_forecast.settings import ForecastService, ForecastServiceSettings, ForecastSettings
from syno_forecast.tables import table_rows, to_frame
from syno_forecast.training import training_set
from syno_shared import db, migrate
from syno_shared.bus import create_broker
from syno_shared.embedded import Endpoints
from syno_shared.events import ForecastPublished, MartsReady, QualityFacts, SnapshotDelta, WorkbookFacts
from syno_shared.quarters import add_quarters
from syno_shared.stage import StageOutcome
from syno_shared.telemetry import Telemetry, setup_telemetry
from syno_transform import warehouse as transform_warehouse
from syno_transform.dbt_runner import dbt_environment
from syno_transform.reference import load_reference

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DBT_DIR = REPO / "dbt"
DBT = Path(sys.executable).parent / "dbt"
MAPPING_DIR = REPO / "data" / "mapping_table"
SNAPSHOT_ID = "forecast-test-snapshot"
FIRST = date(2022, 1, 1)
LAST_COMPLETE = date(2024, 10, 1)  # twelve complete quarters, 2022Q1..2024Q4
TARGET = date(2025, 1, 1)  # the partial current quarter, and the one forecast
C2_JUMP = 2000.0  # C2 revenue of the last complete quarter: far off its seasonal pattern
CHEAP = ["seasonal_naive", "drift"]


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


async def _execute(dsn: str, statement: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _load_snapshot(dsn: str) -> None:
    """The shipped mapping tables and the raw lines, loaded as the transform loads them."""
    connection = await asyncpg.connect(dsn)
    try:
        await transform_warehouse.load_reference(connection, load_reference(MAPPING_DIR))
        await db.copy_frame(connection, "raw", "sales_lines", raw_lines())
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def marts_template(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database with every migration, the raw lines above and the marts `dbt build` makes of them."""
    name = f"forecast_marts_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(endpoints.pg_dsn, f"create database {name}"))
    dsn = database_dsn(endpoints.pg_dsn, name)
    migrate.apply_migrations(dsn, migrate.installed_sources(("ops", "transform", "forecast")))
    asyncio.run(_load_snapshot(dsn))
    target = tmp_path_factory.mktemp("dbt-target")
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


@pytest.fixture
def marts_dsn(endpoints: Endpoints, marts_template: str) -> str:
    """A database of this test's own, cloned from the template (marts, migrations and all)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(endpoints.pg_dsn, f"create database {name} template {marts_template}"))
    return database_dsn(endpoints.pg_dsn, name)


class Replica:
    """One forecast replica in this process: its own broker and runner, sharing the work queue."""

    def __init__(
        self, endpoints: Endpoints, settings: ForecastServiceSettings, telemetry: Telemetry, name: str
    ) -> None:
        self.runner = BatchRunner(0, name=name)
        self.service = ForecastService(
            name="forecast", settings=settings, broker=create_broker(endpoints.nats_url), telemetry=telemetry
        )
        register_worker(self.service, self.runner)


class Harness:
    def __init__(self, endpoints: Endpoints, dsn: str, data_dir: Path, telemetry: Telemetry) -> None:
        self.endpoints = endpoints
        self.dsn = dsn
        self.data_dir = data_dir
        self.telemetry = telemetry
        self.loop = asyncio.new_event_loop()
        self.pool: asyncpg.Pool = self.loop.run_until_complete(db.create_pool(dsn))
        self.replicas: list[Replica] = []

    def start_replicas(self, forecast: ForecastSettings, names: list[str]) -> list[Replica]:
        settings = ForecastServiceSettings(
            data_dir=self.data_dir, nats_url=self.endpoints.nats_url, pg_dsn=self.dsn, forecast=forecast
        )
        for name in names:
            replica = Replica(self.endpoints, settings, self.telemetry, name)
            replica.service.pool_holder.append(self.pool)
            self.loop.run_until_complete(replica.service.broker.start())
            self.replicas.append(replica)
        return self.replicas

    def forecast(self, event: MartsReady) -> StageOutcome:
        return self.loop.run_until_complete(forecast_snapshot(self.replicas[0].service, event))

    def fetch(self, query: str, *args: object) -> pl.DataFrame:
        return self.loop.run_until_complete(db.fetch_frame(self.pool, query, *args))

    def close(self) -> None:
        for replica in self.replicas:
            self.loop.run_until_complete(replica.service.broker.stop())
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()


@pytest.fixture(scope="module")
def telemetry() -> Telemetry:
    return setup_telemetry("forecast-test", None)


@pytest.fixture
def harness(endpoints: Endpoints, marts_dsn: str, data_dir: Path, telemetry: Telemetry) -> Iterator[Harness]:
    running = Harness(endpoints, marts_dsn, data_dir, telemetry)
    yield running
    running.close()


def marts_ready() -> MartsReady:
    return MartsReady(
        run_id=uuid.uuid4().hex,
        snapshot_id=SNAPSHOT_ID,
        dbt_invocation_id="test",
        models_built=[],
        mart_rows={},
        workbook=WorkbookFacts(
            file_name="sell-out.xlsx", size_bytes=1234, sheet_rows={"2024": 8}, delta=SnapshotDelta(is_first=True)
        ),
        quality=QualityFacts(rows_loaded=64, tests_passed=50, tests_warned=1, tests_failed=0),
        data_freshness=date(2025, 1, 10),
        latest_complete_quarter=LAST_COMPLETE,
    )


def published(outcome: StageOutcome) -> ForecastPublished:
    assert isinstance(outcome.event, ForecastPublished)
    return outcome.event


def test_the_training_set_read_from_the_marts_is_the_truth_behind_the_raw_lines(harness: Harness) -> None:
    """Tier, customer, C2 and regional series come out of the dbt marts with the quarterly totals of the
    raw lines, the partial quarter included (the series builder keeps it apart)."""
    marts = harness.loop.run_until_complete(warehouse.fetch_marts(harness.pool))
    series = training_set(marts, LAST_COMPLETE, top_n=20)
    assert_frame_equal(series.sort("series_id", "quarter"), expected_training_set())


def test_marts_to_forecast_tables_with_a_known_next_value(harness: Harness) -> None:
    """A perfectly seasonal tier is forecast at its known next value, with ordered intervals; the event
    carries the snapshot's workbook and quality facts on; a second run for the same snapshot replaces
    that snapshot's rows instead of adding to them."""
    harness.start_replicas(ForecastSettings(processes=0), ["replica-a"])
    event = marts_ready()
    outcome = harness.forecast(event)
    assert outcome.rows == 14  # (T1, T2, TOTAL, two customers, one C2 family) x 2 metrics + 2 regions
    query = (
        "select tier, metric, target_quarter, point, lower_80, upper_80, lower_95, upper_95, model, reason"
        " from forecast.svr_rm where snapshot_id = $1 and cohort = 'overall' order by tier, metric"
    )
    rows = harness.fetch(query, event.snapshot_id)
    assert rows["tier"].to_list() == ["T1", "T1", "T2", "T2", "TOTAL", "TOTAL"]
    assert (rows["target_quarter"] == TARGET).all()
    t1 = {row["metric"]: row for row in rows.filter(pl.col("tier") == "T1").iter_rows(named=True)}
    assert t1["revenue_usd"]["point"] == pytest.approx(100.0, rel=0.02)  # Q1 of the yearly 100/200/300/400
    assert t1["quantity"]["point"] == pytest.approx(10.0, rel=0.02)
    for row in rows.iter_rows(named=True):
        assert row["lower_95"] <= row["lower_80"] <= row["point"] <= row["upper_80"] <= row["upper_95"], row
        assert row["model"] and row["reason"], row

    event_out = published(outcome)
    tiers = {(tier.tier, tier.metric): tier.point for tier in event_out.tiers}
    assert tiers[("T1", "revenue_usd")] == pytest.approx(100.0, rel=0.02)
    assert event_out.target_quarter == TARGET
    assert (event_out.workbook, event_out.quality) == (event.workbook, event.quality)

    counts = "select forecast_run_id, count(*) as n from forecast.{} where snapshot_id = $1 group by 1"
    tables = ("svr_rm", "c2", "sellout")
    first = {table: harness.fetch(counts.format(table), event.snapshot_id) for table in tables}
    assert {table: frame["n"].to_list() for table, frame in first.items()} == {
        "svr_rm": [10],
        "c2": [2],
        "sellout": [2],
    }
    again = published(harness.forecast(event.model_copy(update={"run_id": uuid.uuid4().hex})))
    for table, before in first.items():
        after = harness.fetch(counts.format(table), event.snapshot_id)
        assert after.to_dicts() == [{"forecast_run_id": again.forecast_run_id, "n": before["n"].item()}]
    assert harness.fetch("select count(*) as n from forecast.work_results")["n"].item() == 0


def test_a_cohort_above_its_threshold_is_flagged_in_the_event(harness: Harness) -> None:
    """C2 revenue jumps in the held-out quarter, so its sMAPE breaks the configured 30%; tiers stay within 25%."""
    thresholds = {"overall": 25.0, "customer": 50.0, "c2": 30.0}
    harness.start_replicas(ForecastSettings(processes=0, smape_thresholds=thresholds), ["replica-a"])
    outcome = harness.forecast(marts_ready())
    cohorts = published(outcome).cohorts
    assert [(c.cohort, c.series_count, c.threshold_smape, c.is_threshold_met) for c in cohorts] == [
        ("c2", 2, 30.0, False),
        ("customer", 4, 50.0, True),
        ("overall", 6, 25.0, True),
        ("region", 2, None, True),  # no limit configured for it
    ]
    c2 = cohorts[0]
    assert c2.holdout_smape is not None and c2.holdout_smape > 30.0
    assert outcome.details is not None and outcome.details["flagged_cohorts"] == ["c2"]


def test_two_replicas_share_the_batches_and_the_result_is_complete(harness: Harness) -> None:
    """Batches of two series go to both replicas' work subscribers; the tables hold every series, exactly
    as the engine forecasts them in one process."""
    forecast = ForecastSettings(processes=0, models=CHEAP, batch_series=2)
    replicas = harness.start_replicas(forecast, ["replica-a", "replica-b"])
    event = marts_ready()
    outcome = harness.forecast(event)

    assert outcome.details is not None and outcome.details["batches"] == 7  # 14 series, 2 per batch
    assert outcome.details["workers"] == ["replica-a", "replica-b"]
    assert sum(replica.runner.batches_done for replica in replicas) == 7
    assert all(replica.runner.batches_done > 0 for replica in replicas)

    series = build_quarterly_series(expected_training_set(), last_complete_quarter=LAST_COMPLETE)
    direct = to_frame(evaluate_batch(series, last_complete_quarter=LAST_COMPLETE, models=CHEAP))
    expected = table_rows(direct, forecast_run_id=published(outcome).forecast_run_id, snapshot_id=event.snapshot_id)
    for table, rows in zip(("svr_rm", "c2", "sellout"), expected, strict=True):
        stored = harness.fetch(
            f"select {', '.join(rows.columns)} from forecast.{table} where snapshot_id = $1", event.snapshot_id
        )
        key = [
            name
            for name in ("cohort", "tier", "customer", "service_family", "region", "metric")
            if name in rows.columns
        ]
        assert_frame_equal(stored.sort(key), rows.sort(key), check_dtypes=False)
