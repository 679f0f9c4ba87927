"""The transform stage against the real embedded PostgreSQL and real dbt, on a generated workbook."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from syno_ingestion.workbook import split_sheets
from syno_sample.workbook import SampleReport, SampleSpec, write_workbook
from syno_shared import db, migrate
from syno_shared.bus import create_broker
from syno_shared.embedded import Endpoints
from syno_shared.errors import QualityGateFailed
from syno_shared.events import MartsReady, SheetLanded, SnapshotDelta, UnmappedValue, WorkbookLanded
from syno_shared.fingerprint import file_sha256
from syno_shared.service import Service
from syno_shared.stage import StageOutcome
from syno_shared.telemetry import setup_telemetry
from syno_transform.dbt_runner import WarmDbt
from syno_transform.handlers import transform_workbook
from syno_transform.main import REPO_DBT_DIR
from syno_transform.settings import TransformSettings

pytestmark = pytest.mark.integration


def landed_event(workbook: Path, data_dir: Path) -> WorkbookLanded:
    snapshot_id = file_sha256(workbook)
    out_dir = data_dir / "processed" / "ingestion" / snapshot_id
    sheets = split_sheets(workbook, out_dir)
    return WorkbookLanded(
        run_id=uuid.uuid4().hex,
        snapshot_id=snapshot_id,
        file_name=workbook.name,
        path=f"processed/ingestion/{workbook.name}",
        size_bytes=workbook.stat().st_size,
        delta=SnapshotDelta(is_first=True),
        sheets=[
            SheetLanded(
                name=s.sheet.name,
                kind=s.sheet.kind,
                year=s.sheet.year,
                rows=s.rows,
                columns=s.columns,
                parquet_path=str(s.parquet_path.relative_to(data_dir)),
            )
            for s in sheets
        ],
        contract_version="1.0",
        mapping_versions={},
    )


class Harness:
    def __init__(self, endpoints: Endpoints, pg_dsn: str, data_dir: Path, dbt_target: Path) -> None:
        self.settings = TransformSettings(data_dir=data_dir, nats_url=endpoints.nats_url, pg_dsn=pg_dsn)
        self.dbt = WarmDbt(project_dir=REPO_DBT_DIR, target_path=dbt_target, pg_dsn=pg_dsn)
        self.loop = asyncio.new_event_loop()
        self.service = Service(
            name="transform",
            settings=self.settings,
            broker=create_broker(endpoints.nats_url),
            telemetry=setup_telemetry("transform-test", None),
        )
        migrate.apply_migrations(pg_dsn, migrate.installed_sources(("ops", "transform")))
        self.service.pool_holder.append(self.loop.run_until_complete(db.create_pool(pg_dsn)))

    def transform(self, event: WorkbookLanded) -> StageOutcome:
        return self.loop.run_until_complete(transform_workbook(self.service, self.dbt, event))

    def fetch(self, query: str, *args: object) -> pl.DataFrame:
        return self.loop.run_until_complete(db.fetch_frame(self.service.pool, query, *args))

    def close(self) -> None:
        self.loop.run_until_complete(self.service.pool.close())
        self.loop.close()


@pytest.fixture
def harness(endpoints: Endpoints, isolated_pg_dsn: str, data_dir: Path, dbt_target: Path) -> Iterator[Harness]:
    running = Harness(endpoints, isolated_pg_dsn, data_dir, dbt_target)
    yield running
    running.close()


def sample(tmp_path: Path, data_dir: Path, seed: int, unmapped_share: float = 0.0) -> tuple[Path, SampleReport]:
    workbook = tmp_path / f"sellout-{seed}.xlsx"
    spec = SampleSpec(years=(2023, 2024), rows_per_year=2500, seed=seed, unmapped_share=unmapped_share)
    return workbook, write_workbook(workbook, spec, data_dir / "mapping_table")


def quarterly(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return (
        frame.group_by(pl.col("invoice_date").dt.truncate("1q").alias("quarter"), *keys)
        .agg(pl.col("quantity").sum().cast(pl.Int64), pl.col("revenue_usd").sum().round(2))
        .sort("quarter", *keys)
    )


def test_marts_match_totals_computed_from_the_generated_lines(harness: Harness, tmp_path: Path) -> None:
    workbook, report = sample(tmp_path, harness.settings.data_dir, seed=21)
    event = landed_event(workbook, harness.settings.data_dir)
    harness.transform(event)
    truth = report.truth

    tiers = harness.fetch(
        "select quarter, tier, quantity::bigint as quantity, revenue_usd::float8 as revenue_usd"
        " from marts.svr_rm_quarterly"
    )
    expected = quarterly(truth.filter(pl.col("sub_cat").str.starts_with("SVR-RM-")), ["tier"])
    # The mart lists every tier in every quarter (zeros included); the lines only where something sold.
    joined = tiers.join(expected, on=["quarter", "tier"], how="full", coalesce=True, suffix="_expected").fill_null(0)
    assert joined.height == tiers.height
    assert (joined["quantity"] == joined["quantity_expected"]).all()
    assert (joined["revenue_usd"] - joined["revenue_usd_expected"]).abs().max() < 0.02

    sellout = harness.fetch(
        "select quarter, region, sum(quantity)::bigint as quantity, sum(revenue_usd)::float8 as revenue_usd"
        " from marts.sellout_quarterly group by quarter, region order by quarter, region"
    )
    expected_sellout = quarterly(truth, ["region"])
    assert (
        sellout.select("quarter", "region", "quantity").to_dicts()
        == expected_sellout.select("quarter", "region", "quantity").to_dicts()
    )
    assert sellout["revenue_usd"].to_list() == pytest.approx(expected_sellout["revenue_usd"].to_list(), abs=0.05)

    customers = harness.fetch(
        "select quarter, customer, sum(revenue_usd)::float8 as revenue_usd from marts.svr_rm_customer_quarterly"
        " group by quarter, customer"
    )
    expected_customers = (
        truth.filter(pl.col("sub_cat").str.starts_with("SVR-RM-"))
        .group_by(quarter=pl.col("invoice_date").dt.truncate("1q"), customer=pl.col("customer"))
        .agg(pl.col("revenue_usd").sum())
    )
    joined = expected_customers.join(customers, on=["quarter", "customer"], how="full", suffix="_mart")
    assert joined.filter(pl.col("revenue_usd_mart").is_null() | pl.col("revenue_usd").is_null()).height == 0
    assert (joined["revenue_usd"] - joined["revenue_usd_mart"]).abs().max() < 0.01

    # The generator gives C2 fields to C2 products only: C2 Surveillance on a C2 sheet is not C2.
    c2 = harness.fetch("select sum(revenue_usd)::float8 as revenue_usd from marts.c2_adoption_scorecard")
    expected_c2 = truth.filter(pl.col("c2_service_family").is_not_null())["revenue_usd"].sum()
    assert c2["revenue_usd"].item() == pytest.approx(expected_c2, abs=0.05)


def test_loading_the_same_snapshot_again_never_duplicates(harness: Harness, tmp_path: Path) -> None:
    workbook, report = sample(tmp_path, harness.settings.data_dir, seed=22)
    event = landed_event(workbook, harness.settings.data_dir)
    harness.transform(event)
    count_sql = "select count(*) as n from raw.sales_lines where snapshot_id = $1"
    first = harness.fetch(count_sql, event.snapshot_id)["n"].item()
    marts_first = harness.fetch("select count(*) as n from marts.svr_rm_customer_quarterly")["n"].item()
    harness.transform(event.model_copy(update={"run_id": uuid.uuid4().hex}))
    assert harness.fetch(count_sql, event.snapshot_id)["n"].item() == first == report.truth.height
    assert harness.fetch("select count(*) as n from marts.svr_rm_customer_quarterly")["n"].item() == marts_first


def test_a_failing_dbt_test_stops_the_run_and_keeps_the_previous_marts(harness: Harness, tmp_path: Path) -> None:
    workbook, _ = sample(tmp_path, harness.settings.data_dir, seed=23)
    harness.transform(landed_event(workbook, harness.settings.data_dir))
    before = harness.fetch("select * from marts.svr_rm_quarterly order by quarter, tier")

    # The business mistypes a rule: rackmount RS models become tier T9, which the tier test refuses.
    rules = harness.settings.data_dir / "mapping_table" / "product_rules.csv"
    rules.write_text(rules.read_text().replace("SVR-RM-GP-T1", "SVR-RM-GP-T9"))
    second, _ = sample(tmp_path, harness.settings.data_dir, seed=24)
    with pytest.raises(QualityGateFailed) as caught:
        harness.transform(landed_event(second, harness.settings.data_dir))
    assert caught.value.code == "dbt_test_failed"
    assert "accepted_values" in caught.value.message and "tier" in caught.value.message
    after = harness.fetch("select * from marts.svr_rm_quarterly order by quarter, tier")
    assert after.equals(before)


def test_raw_keeps_only_the_configured_number_of_snapshots(harness: Harness, tmp_path: Path) -> None:
    harness.settings.transform.raw_retention_snapshots = 1
    first, _ = sample(tmp_path, harness.settings.data_dir, seed=25)
    second, _ = sample(tmp_path, harness.settings.data_dir, seed=26)
    harness.transform(landed_event(first, harness.settings.data_dir))
    harness.transform(landed_event(second, harness.settings.data_dir))
    kept = harness.fetch("select distinct snapshot_id from raw.sales_lines")["snapshot_id"].to_list()
    assert kept == [file_sha256(second)]


def test_marts_ready_reports_every_mart_the_build_made_with_its_rows(harness: Harness, tmp_path: Path) -> None:
    """The marts come from the dbt build (models of the marts schema), each with its row count."""
    workbook, report = sample(tmp_path, harness.settings.data_dir, seed=27)
    event = landed_event(workbook, harness.settings.data_dir)

    ready = harness.transform(event).event

    assert isinstance(ready, MartsReady)
    tables = harness.fetch(
        "select table_schema || '.' || table_name as mart from information_schema.tables"
        " where table_schema = 'marts' order by 1"
    )["mart"].to_list()
    assert ready.mart_rows == {mart: harness.fetch(f"select count(*) as n from {mart}")["n"].item() for mart in tables}
    assert ready.quality.rows_loaded == report.truth.height
    assert ready.quality.tests_failed == 0 and ready.quality.tests_passed > 0
    assert ready.workbook.file_name == workbook.name
    assert ready.workbook.sheet_rows == {sheet.sheet: sheet.data_rows for sheet in report.sheets}
    assert ready.data_freshness == report.end_date


def test_unmapped_values_are_recorded_and_the_most_frequent_travel_on_marts_ready(
    harness: Harness, tmp_path: Path
) -> None:
    """Each unknown country and currency with its lines, counted from the generator's truth."""
    workbook, report = sample(tmp_path, harness.settings.data_dir, seed=28, unmapped_share=0.02)
    event = landed_event(workbook, harness.settings.data_dir)
    truth = report.truth
    expected = (
        pl.concat(
            [
                truth.filter(pl.col("region") == "UNMAPPED")
                .group_by(value="country")
                .len()
                .with_columns(field=pl.lit("country")),
                truth.filter(pl.col("revenue_usd").is_null())
                .group_by(value="currency")
                .len()
                .with_columns(field=pl.lit("currency")),
            ]
        )
        .select("field", "value", pl.col("len").alias("rows"))
        .sort("rows", "field", "value", descending=[True, False, False])
    )
    assert expected.height >= 2  # both kinds are present in the sample

    ready = harness.transform(event).event

    assert isinstance(ready, MartsReady)
    recorded = harness.fetch(
        "select field, value, rows from ops.unmapped_values where run_id = $1 and kind = 'unmapped'"
        " order by rows desc, field, value",
        event.run_id,
    )
    assert recorded.rows() == expected.rows()
    assert ready.quality.unmapped_values == [
        UnmappedValue(field=f, value=v, rows=r) for f, v, r in expected.head(20).rows()
    ]
