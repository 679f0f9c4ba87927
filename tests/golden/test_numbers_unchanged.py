"""The numbers the pipeline publishes are the ones it published before the architecture rework.

`before_refactor_seed11_20k.json.gz` holds every mart and forecast table (tests/golden/tables.py) after
the code at commit 0c2b2f3 ran the sample workbook of seed 11 (20,000 lines a year, byte-identical for
the seed) through the four services. This test runs today's services on the same bytes and compares,
table by table and value by value. Renamed columns are mapped. The one intended change, C2 Surveillance
lines on a C2 sheet no longer counted as C2, is checked for exactly what it must move and nothing else.
Columns added since the capture are not compared with it (it has none); the activation snapshot's country and
last order date and C2 revenue (issue 15) are checked against the sample's true lines instead.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from syno_cli.pipeline import drop_on_share, ensure_stream, service_processes, wait_for_run
from syno_sample.workbook import SampleSpec, write_workbook
from syno_shared.embedded import EmbeddedNats, Endpoints
from syno_shared.fingerprint import file_sha256
from syno_shared.settings import Settings

from .tables import differences, load, read_tables

pytestmark = pytest.mark.e2e

GOLDEN = Path(__file__).with_name("before_refactor_seed11_20k.json.gz")
SAMPLE_SHA256 = "8ca0839f0a8beab480cf784d61d7edd8826ea2f3f7fc93383ac75e82d56062b4"
# One name end to end: the marts used to rename these raw columns.
RENAMED = {
    "marts.sellout_quarterly": {"type": "product_type"},
    "marts.c2_adoption_scorecard": {"service_family": "c2_service_family", "plan_variant": "c2_plan"},
}
C2_FIXED = ("marts.c2_adoption_scorecard", "marts.commercial_activation_snapshot", "forecast.c2")


def run_pipeline(tmp_path: Path, pg_dsn: str) -> pl.DataFrame:
    """The seed-11 sample through the four services on a bus of its own; returns the sample's true lines."""
    data_dir = tmp_path / "data"
    mapping_dir = Path(__file__).resolve().parents[2] / "data" / "mapping_table"
    workbook = tmp_path / "golden.xlsx"
    report = write_workbook(workbook, SampleSpec(rows_per_year=20_000, seed=11), mapping_dir)
    assert file_sha256(workbook) == SAMPLE_SHA256, "the sample generator no longer writes the same bytes"
    settings = Settings(data_dir=data_dir, mapping_dir=mapping_dir)
    (tmp_path / "nats").mkdir()
    nats_server = EmbeddedNats(tmp_path / "nats")  # no other test's message reaches these services
    nats_server.start()
    try:
        endpoints = Endpoints(nats_server.url, pg_dsn, is_nats_embedded=True, is_pg_embedded=True)
        asyncio.run(ensure_stream(endpoints.nats_url, settings.stream_name))

        async def follow() -> tuple[str, dict[str, dict[str, object]]]:
            waiter = asyncio.create_task(wait_for_run(endpoints.nats_url, SAMPLE_SHA256, 420))
            await asyncio.sleep(0.3)
            drop_on_share(workbook, settings.raw_dir)
            return await waiter

        with service_processes(settings, endpoints, tmp_path / "logs"):
            status, events = asyncio.run(follow())
    finally:
        nats_server.stop()
    assert status == "succeeded", events
    return report.truth


def frame(copy: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(copy["rows"], schema=copy["columns"], orient="row", infer_schema_length=None)


def true_added_columns(truth: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """For each (quarter, region, customer) of `rows`: the country whose true lines brought the customer most
    revenue in the region (unknown revenue counts as 0, ties by name), the latest true invoice with a positive
    quantity in the region up to the quarter's end (null before the first) and the revenue of its C2 lines (a C2
    service family) in the region that quarter (0 without any). Lines without a customer or an invoice date are
    in no mart."""
    lines = truth.filter(pl.col("customer").is_not_null() & pl.col("invoice_date").is_not_null())
    countries = (
        lines.group_by("customer", "region", "country")
        .agg(pl.col("revenue_usd").fill_null(0.0).sum())
        .sort(["customer", "region", "revenue_usd", "country"], descending=[False, False, True, False])
        .group_by("customer", "region", maintain_order=True)
        .agg(pl.col("country").first())
    )
    orders = (
        lines.filter(pl.col("quantity") > 0)
        .group_by("customer", "region", order_quarter=pl.col("invoice_date").dt.truncate("1q"))
        .agg(last_order_date=pl.col("invoice_date").max())
    )
    c2 = (
        lines.filter(pl.col("c2_service_family").is_not_null())
        .group_by("customer", "region", quarter=pl.col("invoice_date").dt.truncate("1q"))
        .agg(c2_revenue_usd=pl.col("revenue_usd").fill_null(0.0).sum())
    )
    keys = rows.select(pl.col("quarter").str.to_date(), "region", "customer")
    last_orders = (
        keys.join(orders, on=["customer", "region"])
        .filter(pl.col("order_quarter") <= pl.col("quarter"))
        .group_by("quarter", "region", "customer")
        .agg(pl.col("last_order_date").max())
    )
    return (
        keys.join(countries, on=["customer", "region"], how="left")
        .join(last_orders, on=["quarter", "region", "customer"], how="left")
        .join(c2, on=["quarter", "region", "customer"], how="left")
        .with_columns(pl.col("c2_revenue_usd").fill_null(0.0))
        .select("quarter", "region", "customer", "country", "last_order_date", "c2_revenue_usd")
        .sort("quarter", "region", "customer")
    )


def test_every_mart_and_forecast_table_is_unchanged(tmp_path: Path, isolated_pg_dsn: str) -> None:
    truth = run_pipeline(tmp_path, isolated_pg_dsn)
    before, after = load(GOLDEN), asyncio.run(read_tables(isolated_pg_dsn))
    changed = differences(before, after, RENAMED)
    assert {table: changed[table] for table in changed if table not in C2_FIXED} == {}

    # The intended fix, checked against the sample's truth: C2 Surveillance on the C2 sheets was counted as
    # C2 (service family UNKNOWN). Its revenue leaves the C2 scorecard, and only it.
    surveillance = truth.filter(pl.col("source_sheet").str.ends_with("-C2") & pl.col("c2_service_family").is_null())
    assert surveillance.height > 0
    old_c2, new_c2 = frame(before["marts.c2_adoption_scorecard"]), frame(after["marts.c2_adoption_scorecard"])
    assert new_c2["revenue_usd"].sum() == pytest.approx(
        old_c2["revenue_usd"].sum() - surveillance["revenue_usd"].sum(), rel=1e-9
    )
    by_family_before = dict(old_c2.group_by("service_family").agg(pl.sum("revenue_usd")).iter_rows())
    by_family_now = dict(new_c2.group_by("c2_service_family").agg(pl.sum("revenue_usd")).iter_rows())
    by_family_before["UNKNOWN"] -= surveillance["revenue_usd"].sum()  # where those lines were counted
    assert by_family_now == pytest.approx(by_family_before, rel=1e-9)

    # Customers who bought C2 Surveillance only change segment (no longer "C2 only"); every amount stays.
    old_activation = frame(before["marts.commercial_activation_snapshot"])
    new_activation = frame(after["marts.commercial_activation_snapshot"])
    amounts = ["quarter", "region", "customer", "revenue_usd", "qoq_change", "yoy_change"]
    assert_frame_equal(
        old_activation.select(amounts).sort(amounts[:3]), new_activation.select(amounts).sort(amounts[:3]), rel_tol=1e-9
    )
    moved = old_activation.join(new_activation, on=["quarter", "region", "customer"], suffix="_now").filter(
        pl.col("segment") != pl.col("segment_now")
    )
    assert set(moved["segment"]) == {"C2 only"} and set(moved["customer"]) <= set(surveillance["customer"])

    # Added since the capture: each customer's country in the region, its last order and its C2 revenue, from the
    # true lines.
    assert_frame_equal(
        new_activation.select(
            pl.col("quarter").str.to_date(),
            "region",
            "customer",
            "country",
            pl.col("last_order_date").str.to_date(),
            "c2_revenue_usd",
        ).sort("quarter", "region", "customer"),
        true_added_columns(truth, new_activation.select("quarter", "region", "customer")),
        rel_tol=1e-9,
        abs_tol=1e-6,
    )

    # The C2 forecasts change only for the UNKNOWN family, whose history held the miscounted lines.
    old_forecast, new_forecast = frame(before["forecast.c2"]), frame(after["forecast.c2"])
    assert_frame_equal(
        old_forecast.filter(pl.col("service_family") != "UNKNOWN").sort("service_family", "metric"),
        new_forecast.filter(pl.col("service_family") != "UNKNOWN").sort("service_family", "metric"),
        rel_tol=1e-9,
    )
