"""A generated workbook dropped on the share goes through all four services, over the real bus."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import polars as pl
import pytest

from syno_shared import bus
from syno_shared.cli import drop_on_share, ensure_stream, service_processes, wait_for_run
from syno_shared.embedded import Endpoints
from syno_shared.fingerprint import file_sha256
from syno_shared.sample import SampleSpec, write_workbook
from syno_shared.settings import Settings

from .otlp_receiver import OtlpReceiver, serve

pytestmark = pytest.mark.e2e


async def _follow(endpoints: Endpoints, workbook: Path, raw_dir: Path) -> tuple[str, dict[str, dict[str, object]]]:
    waiter = asyncio.create_task(wait_for_run(endpoints.nats_url, file_sha256(workbook), 420))
    await asyncio.sleep(0.3)
    drop_on_share(workbook, raw_dir)
    return await waiter


async def _svr_rm_mart(dsn: str) -> pl.DataFrame:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "select quarter, tier, quantity::bigint as quantity, revenue_usd::float8 as revenue_usd"
            " from marts.svr_rm_quarterly"
        )
    finally:
        await connection.close()
    return pl.DataFrame([dict(row) for row in rows])


def test_dropped_workbook_reaches_activation_with_right_marts_and_one_trace(
    endpoints: Endpoints,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    receiver = OtlpReceiver()
    server = serve(receiver)
    request.addfinalizer(server.server_close)
    request.addfinalizer(server.shutdown)
    monkeypatch.setenv("SYNO_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("SYNO_INGESTION__POLL_SECONDS", "0.3")
    settings = Settings(data_dir=data_dir)
    spec = SampleSpec(years=(2023, 2024), rows_per_year=4000, seed=11, unmapped_share=0.0)
    report = write_workbook(tmp_path / "Sell-out 2024 (final).xlsx", spec, data_dir / "mapping_table")
    workbook = tmp_path / "Sell-out 2024 (final).xlsx"

    asyncio.run(ensure_stream(endpoints.nats_url, settings.stream_name))
    with service_processes(settings, endpoints, tmp_path / "logs"):
        status, events = asyncio.run(_follow(endpoints, workbook, settings.raw_dir))
    logs = {p.name: p.read_text()[-3000:] for p in (tmp_path / "logs").glob("*.log")}
    assert status == "succeeded", (events.get(bus.PIPELINE_FAILED), logs)
    assert set(events) >= {bus.WORKBOOK_LANDED, bus.MARTS_READY, bus.FORECAST_PUBLISHED, bus.ACTIVATION_COMPLETED}

    # The SVR-RM mart holds, for every quarter and tier, the totals of the generated lines.
    truth = report.truth
    expected = (
        truth.filter(pl.col("sub_cat").str.starts_with("SVR-RM-") & pl.col("invoice_date").is_not_null())
        .group_by(quarter=pl.col("invoice_date").dt.truncate("1q"), tier=pl.col("tier"))
        .agg(pl.col("quantity").sum().cast(pl.Int64), pl.col("revenue_usd").sum())
        .sort("quarter", "tier")
    )
    mart = asyncio.run(_svr_rm_mart(endpoints.pg_dsn)).sort("quarter", "tier")
    assert (
        mart.select("quarter", "tier", "quantity").to_dicts()
        == expected.select("quarter", "tier", "quantity").to_dicts()
    )
    busiest = expected.sort("revenue_usd", descending=True).row(0, named=True)
    mart_row = mart.filter((pl.col("quarter") == busiest["quarter"]) & (pl.col("tier") == busiest["tier"]))
    assert mart_row["revenue_usd"].item() == pytest.approx(busiest["revenue_usd"], abs=0.01)
    assert mart["revenue_usd"].sum() == pytest.approx(expected["revenue_usd"].sum(), abs=0.05)

    # All four services' spans for this workbook share one trace id.
    snapshot_id = file_sha256(workbook)
    deadline = time.monotonic() + 20
    services: set[str] = set()
    while time.monotonic() < deadline:
        with receiver.lock:
            roots = [s for s in receiver.spans if s.attributes.get("syno.snapshot_id") == snapshot_id]
            trace_ids = {s.trace_id for s in roots if s.name == "ingestion.workbook"}
            services = {s.service for s in receiver.spans if s.trace_id in trace_ids}
        if len(services) == 4:
            break
        time.sleep(0.5)
    assert len(trace_ids) == 1
    assert services == {"syno-ingestion", "syno-transform", "syno-forecast", "syno-activation"}
