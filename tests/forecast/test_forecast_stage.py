"""The forecast stage from marts to forecast tables, over the real embedded NATS and PostgreSQL.

The marts are written by hand in a database of each test's own (the transform tests build real marts in
the shared one), with series whose next value the test knows. Replicas run in this process: a broker
with the work-queue subscriber and a thread-mode ``BatchRunner`` each.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from syno_forecast import warehouse
from syno_forecast.engine import forecast_frame
from syno_forecast.handlers import forecast_snapshot, register_worker, table_rows, training_set
from syno_forecast.series import add_quarters
from syno_forecast.work import BatchRunner
from syno_shared import db
from syno_shared.bus import create_broker
from syno_shared.embedded import Endpoints
from syno_shared.events import ForecastPublished, MartsReady
from syno_shared.service import Service
from syno_shared.settings import ForecastSettings, Settings
from syno_shared.stage import StageOutcome
from syno_shared.telemetry import Telemetry, setup_telemetry

pytestmark = pytest.mark.integration

FIRST = date(2022, 1, 1)
LAST_COMPLETE = date(2024, 10, 1)  # twelve complete quarters, 2022Q1..2024Q4
TARGET = date(2025, 1, 1)  # the partial current quarter, and the one forecast
CHEAP = ["seasonal_naive", "drift"]

MARTS_DDL = """
create schema if not exists marts;
create table if not exists marts.svr_rm_quarterly (
    quarter date not null, tier text not null, quantity bigint not null, revenue_usd numeric not null
);
create table if not exists marts.svr_rm_customer_quarterly (
    quarter date not null, customer text not null, tier text not null, quantity bigint not null,
    revenue_usd numeric not null
);
create table if not exists marts.sellout_quarterly (quarter date not null, region text not null, revenue_usd numeric);
create table if not exists marts.c2_adoption_scorecard (
    month date not null, quarter date not null, service_family text not null, active_customers bigint not null,
    revenue_usd numeric not null
);
"""


def quarters() -> list[date]:
    return [add_quarters(FIRST, step) for step in range(12)]


def tier_rows() -> list[tuple[Any, ...]]:
    """T1 repeats 10/20/30/40 units and 100..400 USD a year; T2 repeats 5/6/7/8 units and 500..800 USD."""
    rows = []
    for step, quarter in enumerate(quarters()):
        season = step % 4 + 1
        rows += [(quarter, "T1", 10 * season, 100 * season), (quarter, "T2", 4 + season, 400 + 100 * season)]
    # The partial current quarter: kept as actual-to-date, never trained on.
    rows += [(TARGET, "T1", 3, 30), (TARGET, "T2", 1, 90)]
    return rows


def customer_rows() -> list[tuple[Any, ...]]:
    rows = []
    for step, quarter in enumerate(quarters()):
        season = step % 4 + 1
        rows += [(quarter, "Acme Storage", "T1", 6 * season, 60 * season)]
        rows += [(quarter, "Börse Daten GmbH", "T2", season, 200 * season)]
    return rows


def c2_rows(last_quarter_revenue: float | None = None) -> list[tuple[Any, ...]]:
    """One C2 family, one row per month; a quarter's revenue is the sum of its three months."""
    rows = []
    for step, quarter in enumerate(quarters()):
        revenue = 30.0 * (step % 4 + 1)
        if last_quarter_revenue is not None and quarter == LAST_COMPLETE:
            revenue = last_quarter_revenue / 3
        for month in range(3):
            rows.append((date(quarter.year, quarter.month + month, 1), quarter, "C2 Storage", 4 + step, revenue))
    return rows


class Replica:
    """One forecast replica in this process: its own broker and runner, sharing the work queue."""

    def __init__(self, endpoints: Endpoints, settings: Settings, telemetry: Telemetry, name: str) -> None:
        self.runner = BatchRunner(0, name=name)
        self.service = Service(
            name="forecast",
            settings=settings,
            broker=create_broker(endpoints.nats_url),
            telemetry=telemetry,
            ddl=warehouse.FORECAST_DDL,
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
        self.loop.run_until_complete(db.apply_ddl(self.pool, db.OPS_DDL + warehouse.FORECAST_DDL + MARTS_DDL))
        self.replicas: list[Replica] = []

    def start_replicas(self, forecast: ForecastSettings, names: list[str]) -> list[Replica]:
        settings = Settings(
            data_dir=self.data_dir, nats_url=self.endpoints.nats_url, pg_dsn=self.dsn, forecast=forecast
        )
        for name in names:
            replica = Replica(self.endpoints, settings, self.telemetry, name)
            replica.service.pool_holder.append(self.pool)
            self.loop.run_until_complete(replica.service.broker.start())
            self.replicas.append(replica)
        return self.replicas

    def fill_marts(self, *, c2_last_quarter_revenue: float | None = None) -> None:
        async def fill() -> None:
            async with self.pool.acquire() as connection, connection.transaction():
                await connection.execute(
                    "truncate marts.svr_rm_quarterly, marts.svr_rm_customer_quarterly, marts.c2_adoption_scorecard"
                )
                await connection.copy_records_to_table("svr_rm_quarterly", schema_name="marts", records=tier_rows())
                await connection.copy_records_to_table(
                    "svr_rm_customer_quarterly", schema_name="marts", records=customer_rows()
                )
                await connection.copy_records_to_table(
                    "c2_adoption_scorecard", schema_name="marts", records=c2_rows(c2_last_quarter_revenue)
                )

        self.loop.run_until_complete(fill())

    def forecast(self, event: MartsReady) -> StageOutcome:
        return self.loop.run_until_complete(forecast_snapshot(self.replicas[0].service, event))

    def fetch(self, query: str, *args: object) -> pl.DataFrame:
        rows = self.loop.run_until_complete(self.pool.fetch(query, *args))
        return pl.DataFrame([dict(row) for row in rows])

    def close(self) -> None:
        for replica in self.replicas:
            self.loop.run_until_complete(replica.service.broker.stop())
        self.loop.run_until_complete(self.pool.close())
        self.loop.close()


@pytest.fixture(scope="module")
def telemetry() -> Telemetry:
    return setup_telemetry("forecast-test", None)


@pytest.fixture
def harness(endpoints: Endpoints, isolated_pg_dsn: str, data_dir: Path, telemetry: Telemetry) -> Iterator[Harness]:
    running = Harness(endpoints, isolated_pg_dsn, data_dir, telemetry)
    yield running
    running.close()


def marts_ready(snapshot_id: str | None = None) -> MartsReady:
    return MartsReady(
        run_id=uuid.uuid4().hex,
        snapshot_id=snapshot_id or uuid.uuid4().hex,
        dbt_invocation_id="test",
        models_built=[],
        tests_passed=0,
        tests_warned=0,
        tests_failed=0,
        mart_rows={},
        rows_loaded=0,
        data_freshness=date(2025, 1, 20),
        latest_complete_quarter=LAST_COMPLETE,
    )


def published(outcome: StageOutcome) -> ForecastPublished:
    assert isinstance(outcome.event, ForecastPublished)
    return outcome.event


def test_marts_to_forecast_tables_with_a_known_next_value(harness: Harness) -> None:
    """A perfectly seasonal tier is forecast at its known next value, with ordered intervals, and a
    second run for the same snapshot replaces that snapshot's rows instead of adding to them."""
    harness.start_replicas(ForecastSettings(processes=0), ["replica-a"])
    harness.fill_marts()
    event = marts_ready()
    outcome = harness.forecast(event)
    assert outcome.rows == 12  # (T1, T2, TOTAL, two customers, one C2 family) x (quantity, revenue)
    query = (
        "select tier, metric, target_quarter, point, lower_80, upper_80, lower_95, upper_95, model, reason"
        " from forecast.svr_rm where snapshot_id = $1 and cohort = 'overall' order by tier, metric"
    )
    rows = harness.fetch(query, event.snapshot_id)
    assert rows["tier"].to_list() == ["T1", "T1", "T2", "T2", "TOTAL", "TOTAL"]
    assert (rows["target_quarter"] == TARGET).all()
    t1 = {row["metric"]: row for row in rows.filter(pl.col("tier") == "T1").iter_rows(named=True)}
    assert t1["revenue_usd"]["point"] == pytest.approx(100.0, rel=0.02)
    assert t1["quantity"]["point"] == pytest.approx(10.0, rel=0.02)
    for row in rows.iter_rows(named=True):
        assert row["lower_95"] <= row["lower_80"] <= row["point"] <= row["upper_80"] <= row["upper_95"], row
        assert row["model"] and row["reason"], row

    tiers = {(tier.tier, tier.metric): tier.point for tier in published(outcome).tiers}
    assert tiers[("T1", "revenue_usd")] == pytest.approx(100.0, rel=0.02)
    assert published(outcome).target_quarter == TARGET

    counts = "select forecast_run_id, count(*) as n from forecast.{} where snapshot_id = $1 group by 1"
    first = {table: harness.fetch(counts.format(table), event.snapshot_id) for table in ("svr_rm", "c2")}
    again = published(harness.forecast(event.model_copy(update={"run_id": uuid.uuid4().hex})))
    for table, before in first.items():
        after = harness.fetch(counts.format(table), event.snapshot_id)
        assert after.to_dicts() == [{"forecast_run_id": again.forecast_run_id, "n": before["n"].item()}]
    assert harness.fetch("select count(*) as n from forecast.work_results")["n"].item() == 0


def test_a_cohort_above_its_threshold_is_flagged_in_the_event(harness: Harness) -> None:
    """C2 revenue jumps in the held-out quarter, so its sMAPE breaks the configured 30%; tiers stay within 25%."""
    thresholds = {"overall": 25.0, "customer": 50.0, "c2": 30.0}
    harness.start_replicas(ForecastSettings(processes=0, smape_thresholds=thresholds), ["replica-a"])
    harness.fill_marts(c2_last_quarter_revenue=2000.0)
    outcome = harness.forecast(marts_ready())
    cohorts = published(outcome).cohorts
    assert [(c.cohort, c.series_count, c.threshold_smape, c.is_threshold_met) for c in cohorts] == [
        ("c2", 2, 30.0, False),
        ("customer", 4, 50.0, True),
        ("overall", 6, 25.0, True),
    ]
    c2 = cohorts[0]
    assert c2.holdout_smape is not None and c2.holdout_smape > 30.0
    assert outcome.details is not None and outcome.details["flagged_cohorts"] == ["c2"]


def test_two_replicas_share_the_batches_and_the_result_is_complete(harness: Harness) -> None:
    """Batches of two series go to both replicas' work subscribers; the tables hold every series, exactly
    as the engine forecasts them in one process."""
    forecast = ForecastSettings(processes=0, models=CHEAP, batch_series=2)
    replicas = harness.start_replicas(forecast, ["replica-a", "replica-b"])
    harness.fill_marts()
    event = marts_ready()
    outcome = harness.forecast(event)

    assert outcome.details is not None and outcome.details["batches"] == 6  # 12 series, 2 per batch
    assert outcome.details["workers"] == ["replica-a", "replica-b"]
    assert sum(replica.runner.batches_done for replica in replicas) == 6
    assert all(replica.runner.batches_done > 0 for replica in replicas)

    marts = harness.loop.run_until_complete(warehouse.fetch_marts(harness.pool))
    direct = forecast_frame(training_set(marts, LAST_COMPLETE, top_n=20), LAST_COMPLETE, models=CHEAP)
    expected, _, _ = table_rows(
        direct, forecast_run_id=published(outcome).forecast_run_id, snapshot_id=event.snapshot_id
    )
    stored = harness.fetch(
        f"select {', '.join(expected.columns)} from forecast.svr_rm where snapshot_id = $1", event.snapshot_id
    )
    key = ["cohort", "tier", "customer", "metric"]
    assert_frame_equal(stored.sort(key), expected.sort(key), check_dtypes=False)
