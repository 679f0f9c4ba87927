"""Two transform replicas, two workbooks landing in the same instant: the builds take turns (the build lock), both
runs finish, the newer snapshot is published, and each snapshot's forecast is computed from its own marts.

The services run as separate processes, as deployed: two transform replicas and one forecast replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import nats
import nats.js.errors
import polars as pl
import pytest
from integrity_support import (
    build_hashes,
    fetch_rows,
    land,
    landed_event,
    listening,
    stable_hashes,
    write_sample,
)
from polars.testing import assert_frame_equal

from syno_cli.pipeline import stop_processes
from syno_forecast import warehouse as forecast_warehouse
from syno_forecast.runner import evaluate_batch
from syno_forecast.series import build_quarterly_series
from syno_forecast.tables import table_rows, to_frame
from syno_forecast.training import training_set
from syno_shared import bus, db
from syno_shared.events import ForecastPublished, MartsReady

pytestmark = pytest.mark.e2e

MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"
MORNING = datetime(2024, 11, 25, 8, tzinfo=UTC)
CHEAP = ["seasonal_naive", "drift"]


@contextlib.contextmanager
def replicas(names: list[str], env: dict[str, str], log_dir: Path) -> Iterator[None]:
    """`python -m syno_<service>` per name, stopped (SIGTERM, then SIGKILL) on the way out."""
    processes = []
    try:
        for number, name in enumerate(names):
            with (log_dir / f"{name}-{number}.log").open("ab") as log:
                processes.append(
                    subprocess.Popen([sys.executable, "-m", f"syno_{name}"], env=env, stdout=log, stderr=log)
                )
        yield
    finally:
        stop_processes(processes)


async def expected_forecast(pool: asyncpg.Pool, ready: MartsReady, event: ForecastPublished) -> dict[str, pl.DataFrame]:
    """What the engine forecasts from the marts of `ready.marts_schema`, as the rows of the event's run."""
    assert ready.latest_complete_quarter is not None
    last_complete = ready.latest_complete_quarter
    marts = await forecast_warehouse.fetch_marts(pool, ready.marts_schema)
    series = build_quarterly_series(training_set(marts, last_complete, top_n=20), last_complete_quarter=last_complete)
    forecasts = to_frame(evaluate_batch(series, last_complete_quarter=last_complete, models=CHEAP))
    rows = table_rows(forecasts, forecast_run_id=event.forecast_run_id, snapshot_id=event.snapshot_id)
    return dict(zip(("svr_rm", "c2", "sellout"), rows, strict=True))


async def stored_forecast(
    pool: asyncpg.Pool, snapshot_id: str, like: dict[str, pl.DataFrame]
) -> dict[str, pl.DataFrame]:
    stored = {}
    for table, rows in like.items():
        query = f"select {', '.join(rows.columns)} from forecast.{table} where snapshot_id = $1"
        stored[table] = await db.fetch_frame(pool, query, snapshot_id)
    return stored


def same_rows(left: pl.DataFrame, right: pl.DataFrame) -> bool:
    key = [
        name for name in ("cohort", "tier", "customer", "service_family", "region", "metric") if name in left.columns
    ]
    try:
        assert_frame_equal(left.sort(key), right.sort(key), check_dtypes=False)
    except AssertionError:
        return False
    return True


async def test_two_replicas_take_turns_and_each_forecast_reads_its_own_snapshot(
    nats_url: str, isolated_pg_dsn: str, data_dir: Path, tmp_path: Path
) -> None:
    older, _ = write_sample(tmp_path, MAPPING_DIR, seed=61, end_date=date(2024, 11, 5))
    newer, _ = write_sample(tmp_path, MAPPING_DIR, seed=62, end_date=date(2024, 11, 20))
    events = [landed_event(workbook, data_dir, landed_at=MORNING) for workbook in (older, newer)]
    env = {
        **os.environ,
        "SYNO_NATS_URL": nats_url,
        "SYNO_PG_DSN": isolated_pg_dsn,
        "SYNO_DATA_DIR": str(data_dir),
        "SYNO_LOG_FORMAT": "json",
        "SYNO_FORECAST__MODELS": json.dumps(CHEAP),
        "SYNO_FORECAST__PROCESSES": "0",
    }
    log_dir = tmp_path / "logs"
    log_dir.mkdir()

    with replicas(["transform", "transform", "forecast"], env, log_dir):
        async with listening(nats_url) as log:
            await wait_for_pulls(nats_url, "syno-transform", 2)  # both replicas are up before the workbooks land
            await asyncio.gather(*(land(nats_url, event) for event in events))
            for event in events:
                await log.wait_for(lambda event=event: bool(log.of(bus.FORECAST_PUBLISHED, event.snapshot_id)), 420)
            assert log.of(bus.PIPELINE_FAILED) == []

    ready = {
        event.snapshot_id: MartsReady.model_validate(log.of(bus.MARTS_READY, event.snapshot_id)[0]) for event in events
    }
    forecasts = {
        event.snapshot_id: ForecastPublished.model_validate(log.of(bus.FORECAST_PUBLISHED, event.snapshot_id)[0])
        for event in events
    }
    older_ready, newer_ready = ready[events[0].snapshot_id], ready[events[1].snapshot_id]
    assert await stable_hashes(isolated_pg_dsn) == await build_hashes(isolated_pg_dsn, newer_ready.marts_schema)
    assert newer_ready.is_published and older_ready.publication in ("published", "kept_aside_older")

    # The two runs were at work together, their builds one after the other.
    runs = await fetch_rows(
        isolated_pg_dsn,
        "select started_at, finished_at from ops.stage_runs where stage = 'transform' and status = 'succeeded'"
        " order by started_at",
    )
    assert len(runs) == 2 and runs[1]["started_at"] < runs[0]["finished_at"]
    builds = await fetch_rows(
        isolated_pg_dsn, "select started_at, finished_at from ops.snapshot_builds order by started_at"
    )
    assert len(builds) == 2 and builds[0]["finished_at"] <= builds[1]["started_at"]

    pool = await asyncpg.create_pool(isolated_pg_dsn)
    try:
        for snapshot_id, own in ready.items():
            other = next(r for s, r in ready.items() if s != snapshot_id)
            published = forecasts[snapshot_id]
            assert published.marts_schema == own.marts_schema
            expected = await expected_forecast(pool, own, published)
            stored = await stored_forecast(pool, snapshot_id, expected)
            assert all(same_rows(stored[table], expected[table]) for table in expected)
            from_other = await expected_forecast(pool, other, published)
            assert not all(same_rows(stored[table], from_other[table]) for table in expected)
    finally:
        await pool.close()


async def wait_for_pulls(nats_url: str, durable: str, replicas: int, seconds: float = 180) -> None:
    """Wait until the consumer has a pull request waiting from each replica (every replica is up)."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        waiting = 0
        for _ in range(int(seconds * 4)):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                waiting = (await js.consumer_info("SYNO", durable)).num_waiting or 0
            if waiting >= replicas:
                return
            await asyncio.sleep(0.25)
        raise AssertionError(f"{waiting} of {replicas} replicas pulling from {durable} after {seconds:.0f} s")
    finally:
        await connection.close()
