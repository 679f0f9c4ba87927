"""The forecast stage from marts to forecast tables, over the real embedded NATS and PostgreSQL.

The marts are built by the project's own dbt from raw lines whose quarterly totals the test knows (see
forecast_marts.py); each test has a database of its own, cloned from them. Replicas run in this process:
a broker with the work-queue subscriber and a thread-mode ``BatchRunner`` each.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import asyncpg
import polars as pl
import pytest
from forecast_marts import LAST_COMPLETE, SNAPSHOT_ID, TARGET, expected_training_set
from polars.testing import assert_frame_equal

from syno_forecast import warehouse
from syno_forecast.handlers import forecast_snapshot, register_worker
from syno_forecast.runner import BatchRunner, evaluate_batch
from syno_forecast.series import build_quarterly_series
from syno_forecast.settings import ForecastOptions, ForecastService, ForecastSettings
from syno_forecast.tables import table_rows, to_frame
from syno_forecast.training import training_set
from syno_shared import db
from syno_shared.bus import create_broker
from syno_shared.embedded import Endpoints
from syno_shared.errors import InputRejected
from syno_shared.events import ForecastPublished, MartsReady, QualityFacts, SnapshotDelta, WorkbookFacts
from syno_shared.stage import StageOutcome
from syno_shared.telemetry import Telemetry, setup_telemetry

pytestmark = pytest.mark.integration

CHEAP = ["seasonal_naive", "drift"]


class Replica:
    """One forecast replica in this process: its own broker and runner, sharing the work queue."""

    def __init__(self, endpoints: Endpoints, settings: ForecastSettings, telemetry: Telemetry, name: str) -> None:
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

    def start_replicas(self, forecast: ForecastOptions, names: list[str]) -> list[Replica]:
        settings = ForecastSettings(
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
    marts = harness.loop.run_until_complete(warehouse.fetch_marts(harness.pool, "marts"))
    series = training_set(marts, LAST_COMPLETE, top_n=20)
    assert_frame_equal(series.sort("series_id", "quarter"), expected_training_set())


def test_the_forecast_reads_the_marts_schema_its_event_names(harness: Harness) -> None:
    """A snapshot's marts live in its build's schema: the forecast trains on the schema marts.ready names (here a
    copy of the marts with every amount doubled), not on the stable names, and says so on forecast.published."""
    build = "b_0123456789ab_cdef0123_marts"
    statements = [f"create schema {build}"] + [
        f"create table {build}.{mart} as select * from marts.{mart}"
        for mart in ("svr_rm_quarterly", "svr_rm_customer_quarterly", "c2_adoption_scorecard", "sellout_quarterly")
    ]
    statements += [
        f"update {build}.svr_rm_quarterly set quantity = 2 * quantity, revenue_usd = 2 * revenue_usd",
        f"update {build}.svr_rm_customer_quarterly set quantity = 2 * quantity, revenue_usd = 2 * revenue_usd",
        f"update {build}.c2_adoption_scorecard set active_customers = 2 * active_customers,"
        " revenue_usd = 2 * revenue_usd",
        f"update {build}.sellout_quarterly set revenue_usd = 2 * revenue_usd",
    ]
    for statement in statements:
        harness.loop.run_until_complete(harness.pool.execute(statement))

    marts = harness.loop.run_until_complete(warehouse.fetch_marts(harness.pool, build))

    doubled = expected_training_set().with_columns(pl.col("value") * 2)
    assert_frame_equal(training_set(marts, LAST_COMPLETE, top_n=20).sort("series_id", "quarter"), doubled)
    harness.start_replicas(ForecastOptions(processes=0, models=CHEAP), ["replica-a"])
    event = marts_ready().model_copy(update={"marts_schema": build})
    outcome = harness.forecast(event)
    assert published(outcome).marts_schema == build
    t1 = harness.fetch(
        "select point from forecast.svr_rm where snapshot_id = $1 and cohort = 'overall' and tier = 'T1'"
        " and metric = 'revenue_usd'",
        event.snapshot_id,
    )
    assert t1["point"].item() == pytest.approx(200.0, rel=0.02)  # Q1 of the doubled yearly 200/400/600/800


def test_marts_that_are_no_longer_kept_reject_the_event(harness: Harness) -> None:
    """A marts.ready naming a build retention has dropped fails once, with a reason, instead of being retried."""
    with pytest.raises(InputRejected) as caught:
        harness.loop.run_until_complete(warehouse.fetch_marts(harness.pool, "b_0123456789ab_00000000_marts"))
    assert caught.value.code == "marts_not_kept"


def test_marts_to_forecast_tables_with_a_known_next_value(harness: Harness) -> None:
    """A perfectly seasonal tier is forecast at its known next value, with ordered intervals; the event
    carries the snapshot's workbook and quality facts on; a second run for the same snapshot replaces
    that snapshot's rows instead of adding to them."""
    harness.start_replicas(ForecastOptions(processes=0), ["replica-a"])
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
    harness.start_replicas(ForecastOptions(processes=0, smape_thresholds=thresholds), ["replica-a"])
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
    forecast = ForecastOptions(processes=0, models=CHEAP, batch_series=2)
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
