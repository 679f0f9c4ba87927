"""A generated workbook dropped on the share goes through all four services, over the real bus."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import asyncpg
import polars as pl
import pytest

from syno_cli.pipeline import drop_on_share, ensure_stream, service_processes, wait_for_run
from syno_cli.replay import replay_event
from syno_cli.smoke import published_snapshot
from syno_sample.workbook import SampleSpec, write_workbook
from syno_shared import bus
from syno_shared.embedded import Endpoints
from syno_shared.fingerprint import file_sha256
from syno_shared.settings import Settings

from .otlp_receiver import OtlpReceiver, serve

pytestmark = pytest.mark.e2e


async def _follow(endpoints: Endpoints, workbook: Path, raw_dir: Path) -> tuple[str, dict[str, dict[str, object]]]:
    waiter = asyncio.create_task(wait_for_run(endpoints.nats_url, file_sha256(workbook), 420))
    await asyncio.sleep(0.3)
    drop_on_share(workbook, raw_dir)
    return await waiter


async def _replay_and_follow(endpoints: Endpoints, snapshot_id: str) -> tuple[str, dict[str, dict[str, object]]]:
    waiter = asyncio.create_task(wait_for_run(endpoints.nats_url, snapshot_id, 300))
    await asyncio.sleep(0.3)
    await replay_event(endpoints.nats_url, "SYNO", bus.WORKBOOK_LANDED, snapshot_id)
    return await waiter


async def _count_rows(dsn: str, snapshot_id: str) -> dict[str, int]:
    connection = await asyncpg.connect(dsn)
    try:
        return {
            "raw": await connection.fetchval(
                "select count(*) from raw.sales_lines where snapshot_id = $1", snapshot_id
            ),
            "forecast": await connection.fetchval(
                "select count(*) from forecast.svr_rm where snapshot_id = $1", snapshot_id
            ),
            "storylines": await connection.fetchval(
                "select count(*) from activation.storylines where snapshot_id = $1", snapshot_id
            ),
            "mart": await connection.fetchval("select count(*) from marts.svr_rm_customer_quarterly"),
            "storylines_with_forecast": await connection.fetchval(
                "select count(*) from activation.storylines where snapshot_id = $1 and forecast_revenue is not null",
                snapshot_id,
            ),
        }
    finally:
        await connection.close()


async def _stage_runs(dsn: str, snapshot_id: str) -> dict[str, int]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "select stage, count(*) as runs from ops.stage_runs where snapshot_id = $1 group by stage", snapshot_id
        )
    finally:
        await connection.close()
    return {stage: 0 for stage in ("ingestion", "transform", "forecast", "activation")} | {
        row["stage"]: row["runs"] for row in rows
    }


def _syno_run_from_stage(
    workbook: Path, stage: str, endpoints: Endpoints, data_dir: Path
) -> subprocess.CompletedProcess[str]:
    """`syno run PATH --from-stage STAGE` against the running deployment, as an operator types it."""
    return _syno(["run", str(workbook), "--from-stage", stage, "--json", "--timeout", "300"], endpoints, data_dir)


def _syno(args: list[str], endpoints: Endpoints, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syno_cli", *args],
        env={
            **os.environ,
            "SYNO_NATS_URL": endpoints.nats_url,
            "SYNO_PG_DSN": endpoints.pg_dsn,
            "SYNO_DATA_DIR": str(data_dir),
        },
        capture_output=True,
        text=True,
        timeout=360,
    )


class Chat(http.server.BaseHTTPRequestHandler):
    """A chat webhook (apprise json://) that keeps what it was sent."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        Chat.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


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
    isolated_pg_dsn: str,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    endpoints = dataclasses.replace(endpoints, pg_dsn=isolated_pg_dsn)  # a warehouse of its own
    receiver = OtlpReceiver()
    server = serve(receiver)
    request.addfinalizer(server.server_close)
    request.addfinalizer(server.shutdown)
    monkeypatch.setenv("SYNO_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("SYNO_INGESTION__POLL_SECONDS", "0.3")
    chat = Chat
    chat.bodies.clear()
    chat_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Chat)
    threading.Thread(target=chat_server.serve_forever, daemon=True).start()
    request.addfinalizer(chat_server.server_close)
    request.addfinalizer(chat_server.shutdown)
    monkeypatch.setenv("SYNO_ACTIVATION__NOTIFY_URLS", f'["json://127.0.0.1:{chat_server.server_port}/chat"]')
    settings = Settings(data_dir=data_dir)
    spec = SampleSpec(years=(2023, 2024), rows_per_year=4000, seed=11, unmapped_share=0.0)
    report = write_workbook(tmp_path / "Sell-out 2024 (final).xlsx", spec, data_dir / "mapping_table")
    workbook = tmp_path / "Sell-out 2024 (final).xlsx"

    asyncio.run(ensure_stream(endpoints.nats_url, settings.stream_name))
    snapshot_id = file_sha256(workbook)
    with service_processes(settings, endpoints, tmp_path / "logs"):
        status, events = asyncio.run(_follow(endpoints, workbook, settings.raw_dir))
        rows_before = asyncio.run(_count_rows(endpoints.pg_dsn, snapshot_id))
        # A forced replay of the landing event redoes every stage once, replacing rows, never duplicating them.
        replay_status, replay_events = asyncio.run(_replay_and_follow(endpoints, snapshot_id))
        rows_after = asyncio.run(_count_rows(endpoints.pg_dsn, snapshot_id))
        # A partial rerun from the forecast stage: forecast and activation redo theirs, transform does not run.
        runs_before = asyncio.run(_stage_runs(endpoints.pg_dsn, snapshot_id))
        rerun = _syno_run_from_stage(workbook, "forecast", endpoints, data_dir)
        runs_after = asyncio.run(_stage_runs(endpoints.pg_dsn, snapshot_id))
        rows_after_rerun = asyncio.run(_count_rows(endpoints.pg_dsn, snapshot_id))
        # A rehearsal on the running services: every stage answers, nothing is published or sent.
        sent_before_smoke = len(chat.bodies)
        smoke = _syno(["smoke", "--rows-per-year", "1500", "--timeout", "300"], endpoints, data_dir)
        sent_after_smoke = len(chat.bodies)
        published_after_smoke = asyncio.run(published_snapshot(endpoints.pg_dsn))
    logs = {p.name: p.read_text()[-3000:] for p in (tmp_path / "logs").glob("*.log")}
    assert status == "succeeded", (events.get(bus.PIPELINE_FAILED), logs)
    assert set(events) >= {bus.WORKBOOK_LANDED, bus.MARTS_READY, bus.FORECAST_PUBLISHED, bus.ACTIVATION_COMPLETED}
    assert replay_status == "succeeded", replay_events
    assert replay_events[bus.MARTS_READY]["run_id"] == events[bus.MARTS_READY]["run_id"]
    assert rows_after == rows_before
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads(rerun.stdout)["status"] == "succeeded"
    assert runs_after["ingestion"] == runs_before["ingestion"] and runs_after["transform"] == runs_before["transform"]
    assert runs_after["forecast"] == runs_before["forecast"] + 1
    assert runs_after["activation"] == runs_before["activation"] + 1
    assert rows_after_rerun == rows_before
    assert smoke.returncode == 0, smoke.stderr[-3000:]
    assert "smoke passed" in smoke.stderr
    assert published_after_smoke == snapshot_id
    assert sent_before_smoke >= 1 and sent_after_smoke == sent_before_smoke  # the run's summary; none for smoke
    assert rows_before["raw"] == report.truth.height
    assert rows_before["storylines_with_forecast"] > 0  # regional forecasts reach the storylines

    # The SVR-RM mart holds, for every quarter and tier, the totals of the generated lines.
    truth = report.truth
    expected = (
        truth.filter(pl.col("sub_cat").str.starts_with("SVR-RM-") & pl.col("invoice_date").is_not_null())
        .group_by(quarter=pl.col("invoice_date").dt.truncate("1q"), tier=pl.col("tier"))
        .agg(pl.col("quantity").sum().cast(pl.Int64), pl.col("revenue_usd").sum())
        .sort("quarter", "tier")
    )
    mart = asyncio.run(_svr_rm_mart(endpoints.pg_dsn))
    # The mart lists every tier in every quarter (zeros included); the lines only where something sold.
    joined = mart.join(expected, on=["quarter", "tier"], how="full", coalesce=True, suffix="_expected").fill_null(0)
    assert joined.height == mart.height
    assert (joined["quantity"] == joined["quantity_expected"]).all()
    assert (joined["revenue_usd"] - joined["revenue_usd_expected"]).abs().max() < 0.01

    # All four services' spans for this workbook share one trace id.
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
