"""Readers see one snapshot: the stable names switch from one build to the next in one step, and a forecast reads
the marts of the snapshot its event names, whatever is published meanwhile.

The transform runs as its real app in this process; the forecast runs its real stage code with an in-process
replica (one thread) whose batches can be held back until a newer snapshot has been published.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import polars as pl
import pytest
from integrity_support import (
    STABLE_MARTS,
    TransformApp,
    build_hashes,
    land,
    landed_event,
    listening,
    sellout_by_quarter,
    stable_hashes,
    stable_hashes_at_once,
    write_sample,
)
from polars.testing import assert_frame_equal

from syno_forecast.backtest import SeriesForecast
from syno_forecast.handlers import forecast_snapshot, register_worker
from syno_forecast.runner import BatchRunner
from syno_forecast.settings import ForecastOptions, ForecastService, ForecastSettings
from syno_forecast.workqueue import WorkBatch
from syno_shared import db, migrate
from syno_shared.bus import create_broker
from syno_shared.events import ForecastPublished, MartsReady
from syno_shared.telemetry import setup_telemetry

pytestmark = pytest.mark.integration

MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"
MORNING = datetime(2024, 11, 25, 8, tzinfo=UTC)
CHEAP = ["seasonal_naive", "drift"]


async def test_the_stable_names_never_show_a_mix_of_two_builds(
    transform_app: TransformApp, nats_url: str, isolated_pg_dsn: str, data_dir: Path, tmp_path: Path
) -> None:
    """A reader queries the five stable names in one statement, over and over, while the next snapshot is loaded,
    built, tested, gated and published: it sees the first build whole, then the second build whole, nothing else."""
    first, _ = write_sample(tmp_path, MAPPING_DIR, seed=51, end_date=date(2024, 11, 5))
    second, _ = write_sample(tmp_path, MAPPING_DIR, seed=52, end_date=date(2024, 11, 20))
    events = [landed_event(workbook, data_dir, landed_at=MORNING) for workbook in (first, second)]

    async with transform_app(), listening(nats_url) as log:
        await land(nats_url, events[0])
        first_ready = await log.outcome(events[0].snapshot_id)
        first_build = await build_hashes(isolated_pg_dsn, first_ready["marts_schema"])

        seen: list[tuple[str, ...]] = []
        is_done = asyncio.Event()

        async def read_in_a_loop() -> None:
            connection = await asyncpg.connect(isolated_pg_dsn)
            try:
                while not is_done.is_set():
                    seen.append(await stable_hashes_at_once(connection))
                    await asyncio.sleep(0.01)
            finally:
                await connection.close()

        reader = asyncio.create_task(read_in_a_loop())
        await land(nats_url, events[1])
        second_ready = await log.outcome(events[1].snapshot_id)
        await asyncio.sleep(0.5)
        is_done.set()
        await reader

    second_build = await build_hashes(isolated_pg_dsn, second_ready["marts_schema"])
    views = tuple(first_build[mart] for mart in STABLE_MARTS), tuple(second_build[mart] for mart in STABLE_MARTS)
    assert views[0] != views[1] and all(a != b for a, b in zip(*views, strict=True))  # every mart changes
    switches = [index for index in range(1, len(seen)) if seen[index] != seen[index - 1]]
    assert len(seen) > 50, "the reader should have read throughout the build"
    assert (seen[0], seen[-1], len(switches)) == (views[0], views[1], 1)
    assert set(seen) == set(views)


class HeldRunner(BatchRunner):
    """A one-thread replica engine whose batches wait until `go` is set (to publish a snapshot mid-forecast)."""

    def __init__(self, name: str) -> None:
        super().__init__(0, name=name)
        self.go = asyncio.Event()
        self.go.set()
        self.is_holding = asyncio.Event()

    async def evaluate(self, batch: WorkBatch) -> list[SeriesForecast]:
        if not self.go.is_set():
            self.is_holding.set()
            await self.go.wait()
        return await super().evaluate(batch)


async def forecast_rows(pool: asyncpg.Pool, snapshot_id: str) -> dict[str, pl.DataFrame]:
    """A snapshot's rows in the three forecast tables, without the run's id, in a fixed order."""
    frames = {}
    for table in ("svr_rm", "c2", "sellout"):
        frame = await db.fetch_frame(pool, f"select * from forecast.{table} where snapshot_id = $1", snapshot_id)
        frames[table] = frame.drop("forecast_run_id").sort(frame.drop("forecast_run_id").columns, nulls_last=True)
    return frames


@pytest.fixture
async def forecast_replica(nats_url: str, isolated_pg_dsn: str, data_dir: Path) -> AsyncIterator[Any]:
    """One forecast replica in this process: its work-queue consumer and a held-back engine, cheap models."""
    await asyncio.to_thread(migrate.apply_migrations, isolated_pg_dsn, migrate.installed_sources(("ops", "forecast")))
    settings = ForecastSettings(
        data_dir=data_dir,
        nats_url=nats_url,
        pg_dsn=isolated_pg_dsn,
        forecast=ForecastOptions(processes=0, models=CHEAP, batch_series=4),
    )
    runner = HeldRunner("replica-a")
    service = ForecastService(
        name="forecast",
        settings=settings,
        broker=create_broker(nats_url),
        telemetry=setup_telemetry("forecast-integrity-test", None),
    )
    register_worker(service, runner)
    pool = await db.create_pool(isolated_pg_dsn)
    service.pool_holder.append(pool)
    await service.broker.start()
    try:
        yield service, runner
    finally:
        await service.broker.stop()
        await pool.close()


async def test_a_forecast_reads_its_own_snapshot_while_a_newer_one_is_published(
    transform_app: TransformApp,
    forecast_replica: Any,
    nats_url: str,
    isolated_pg_dsn: str,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    """Snapshot A's forecast, with B published while its batches are out (and again after B is published),
    equals A's forecast run alone: it reads A's build, never the stable names."""
    service, runner = forecast_replica
    older, _ = write_sample(tmp_path, MAPPING_DIR, seed=53, end_date=date(2024, 11, 5))
    newer, _ = write_sample(tmp_path, MAPPING_DIR, seed=54, end_date=date(2024, 11, 20))
    events = [landed_event(older, data_dir, landed_at=MORNING), landed_event(newer, data_dir, landed_at=MORNING)]

    async with transform_app(), listening(nats_url) as log:
        await land(nats_url, events[0])
        body = await log.outcome(events[0].snapshot_id)
        ready = MartsReady.model_validate({key: value for key, value in body.items() if key != "subject"})
        alone = await forecast_snapshot(service, ready)
        rows_alone = await forecast_rows(service.pool, ready.snapshot_id)
        assert sum(frame.height for frame in rows_alone.values()) == alone.rows > 0

        runner.go.clear()
        forecast = asyncio.create_task(forecast_snapshot(service, ready))
        await asyncio.wait_for(runner.is_holding.wait(), 120)  # A's marts are read, its batches out
        await land(nats_url, events[1])
        newer_ready = await log.outcome(events[1].snapshot_id)
        assert newer_ready["publication"] == "published"
        assert await stable_hashes(isolated_pg_dsn) == await build_hashes(isolated_pg_dsn, newer_ready["marts_schema"])
        runner.go.set()
        during = await forecast
        rows_during = await forecast_rows(service.pool, ready.snapshot_id)

        after = await forecast_snapshot(service, ready)  # read only now, with B published
        rows_after = await forecast_rows(service.pool, ready.snapshot_id)

    # The two snapshots' marts differ, so equal forecasts mean the forecast kept to A's.
    assert await sellout_by_quarter(isolated_pg_dsn, ready.marts_schema) != await sellout_by_quarter(isolated_pg_dsn)
    for outcome in (alone, during, after):
        assert isinstance(outcome.event, ForecastPublished) and outcome.event.marts_schema == ready.marts_schema
    for table, frame in rows_alone.items():
        assert_frame_equal(rows_during[table], frame)
        assert_frame_equal(rows_after[table], frame)
        assert (frame["snapshot_id"] == ready.snapshot_id).all()
