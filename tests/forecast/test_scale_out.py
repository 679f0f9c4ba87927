"""Scale-out: four forecast replicas, each a process of its own as in production, share one run's 2,000 series
over the work queue, and every series is forecast exactly once.

The marts are written straight into a snapshot's marts schema (one tier, 997 customers, two regions: 4 + 1,994
+ 2 = 2,000 series), marts.ready is published on the real embedded NATS, one replica coordinates, all four
take batches. Cheap models keep the engine's share of the time small: this test is about the work queue.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import asyncpg
import pytest

from syno_cli.pipeline import stop_processes
from syno_forecast.training import SEPARATOR
from syno_shared import bus, migrate
from syno_shared.embedded import EmbeddedNats
from syno_shared.events import MartsReady, QualityFacts, SnapshotDelta, WorkbookFacts
from syno_shared.quarters import add_quarters

pytestmark = pytest.mark.integration

REPLICAS = 4
CUSTOMERS = 997
REGIONS = ("R1", "R2")
SERIES = 4 + 2 * CUSTOMERS + len(REGIONS)  # overall T1 and TOTAL x 2 metrics, customers x 2, regions
BATCH_SERIES = 25
FIRST = date(2022, 1, 1)
LAST_COMPLETE = date(2024, 10, 1)  # twelve complete quarters
MARTS = "b_5ca1e0000000_00000000_marts"


def quarters() -> list[date]:
    return [add_quarters(FIRST, step) for step in range(12)]


async def write_marts(dsn: str) -> None:
    """The four marts the forecast reads, in a snapshot's own schema; amounts differ per customer and quarter."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f"create schema {MARTS}")
        await connection.execute(
            f"create table {MARTS}.svr_rm_customer_quarterly"
            " (quarter date, customer text, tier text, quantity numeric, revenue_usd numeric)"
        )
        await connection.execute(
            f"create table {MARTS}.svr_rm_quarterly (quarter date, tier text, quantity numeric, revenue_usd numeric)"
        )
        await connection.execute(
            f"create table {MARTS}.c2_adoption_scorecard (month date, quarter date, c2_service_family text,"
            " active_customers numeric, revenue_usd numeric)"
        )
        await connection.execute(
            f"create table {MARTS}.sellout_quarterly (quarter date, region text, revenue_usd numeric)"
        )
        customer_rows = [
            (quarter, f"Customer {number:04d}", "T1", 5 + (number + step) % 7, 1000.0 + 10 * number + 50 * (step % 4))
            for number in range(CUSTOMERS)
            for step, quarter in enumerate(quarters())
        ]
        await connection.copy_records_to_table("svr_rm_customer_quarterly", schema_name=MARTS, records=customer_rows)
        totals: dict[date, list[float]] = {}
        for quarter, _, _, quantity, revenue in customer_rows:
            totals.setdefault(quarter, [0.0, 0.0])
            totals[quarter][0] += quantity
            totals[quarter][1] += revenue
        await connection.copy_records_to_table(
            "svr_rm_quarterly",
            schema_name=MARTS,
            records=[(quarter, "T1", quantity, revenue) for quarter, (quantity, revenue) in totals.items()],
        )
        await connection.copy_records_to_table(
            "sellout_quarterly",
            schema_name=MARTS,
            records=[
                (quarter, region, 500.0 * (index + 1) + 20 * step)
                for index, region in enumerate(REGIONS)
                for step, quarter in enumerate(quarters())
            ],
        )
    finally:
        await connection.close()


def marts_ready(snapshot_id: str) -> MartsReady:
    return MartsReady(
        run_id=uuid.uuid4().hex,
        snapshot_id=snapshot_id,
        dbt_invocation_id="scale-out",
        models_built=[],
        mart_rows={},
        workbook=WorkbookFacts(
            file_name="scale-out.xlsx", size_bytes=1, sheet_rows={"2024": 1}, delta=SnapshotDelta(is_first=True)
        ),
        quality=QualityFacts(rows_loaded=1, tests_passed=1, tests_warned=0, tests_failed=0),
        data_freshness=date(2025, 1, 10),
        latest_complete_quarter=LAST_COMPLETE,
        marts_schema=MARTS,
    )


async def publish(nats_url: str, event: MartsReady) -> None:
    broker = bus.create_broker(nats_url)
    await broker.start()
    try:
        ack = await bus.publish_event(broker, bus.MARTS_READY, event, stream_name="SYNO")
        assert ack is not None and not ack.duplicate
    finally:
        await broker.stop()


async def fetch(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


@pytest.fixture
def replicas(tmp_path: Path, isolated_pg_dsn: str) -> Iterator[tuple[str, str, list[Path]]]:
    """A NATS server of the test's own, a migrated database with the marts, and four replica processes."""
    (tmp_path / "nats").mkdir()
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    processes: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / f"forecast-{number}.log" for number in range(REPLICAS)]
    try:
        asyncio.run(bus.ensure_streams(server.url, "SYNO"))
        migrate.apply_migrations(isolated_pg_dsn, migrate.installed_sources())
        asyncio.run(write_marts(isolated_pg_dsn))
        for folder in ("raw", "processed", "quarantine"):
            (tmp_path / "data" / folder).mkdir(parents=True)
        env = {
            **os.environ,
            "SYNO_NATS_URL": server.url,
            "SYNO_PG_DSN": isolated_pg_dsn,
            "SYNO_DATA_DIR": str(tmp_path / "data"),
            "SYNO_MIGRATE_ON_START": "false",
            "SYNO_LOG_FORMAT": "json",
            "SYNO_FORECAST__MODELS": json.dumps(["seasonal_naive", "drift"]),
            "SYNO_FORECAST__TOP_CUSTOMERS": str(CUSTOMERS),
            "SYNO_FORECAST__BATCH_SERIES": str(BATCH_SERIES),
            "SYNO_FORECAST__PROCESSES": "0",  # 4 replicas on a 2-core machine: one thread each is plenty
        }
        env.pop("SYNO_FAULT", None)
        for log in logs:
            health_dir = log.with_suffix("")  # a health file of its own: written once the app has started
            health_dir.mkdir()
            with log.open("ab") as handle:
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "syno_forecast"],
                        env={**env, "SYNO_HEALTH_DIR": str(health_dir)},
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                    )
                )
        yield server.url, isolated_pg_dsn, logs
    finally:
        stop_processes(processes, grace_seconds=30)
        server.stop()


def log_lines(log: Path, event: str) -> list[dict[str, object]]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            record = json.loads(line)
            if record.get("event") == event:
                lines.append(record)
    return lines


def wait_until_ready(logs: list[Path], timeout: float = 180) -> None:
    """Every replica has subscribed (its health report starts after that) before the run begins."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(list(log.with_suffix("").glob("*.health.json")) for log in logs):
            return
        time.sleep(0.5)
    raise AssertionError("not every forecast replica started: " + " | ".join(log.read_text()[-500:] for log in logs))


def test_four_replica_processes_forecast_every_series_exactly_once(replicas: tuple[str, str, list[Path]]) -> None:
    nats_url, dsn, logs = replicas
    wait_until_ready(logs)
    snapshot_id = uuid.uuid4().hex * 2  # a workbook fingerprint's shape
    asyncio.run(publish(nats_url, marts_ready(snapshot_id)))

    deadline = time.monotonic() + 240
    runs: list[asyncpg.Record] = []
    while time.monotonic() < deadline and not runs:
        runs = asyncio.run(
            fetch(dsn, "select forecast_run_id from ops.forecast_runs where snapshot_id = $1", snapshot_id)
        )
        time.sleep(0.5)
    assert runs, "no forecast run recorded; logs: " + " | ".join(log.read_text()[-800:] for log in logs)
    [run] = runs

    svr_rm = asyncio.run(
        fetch(
            dsn,
            "select cohort, tier, customer, metric, forecast_run_id from forecast.svr_rm where snapshot_id = $1",
            snapshot_id,
        )
    )
    sellout = asyncio.run(
        fetch(dsn, "select region, metric, forecast_run_id from forecast.sellout where snapshot_id = $1", snapshot_id)
    )
    keys = [
        SEPARATOR.join(("customer", row["customer"], row["metric"]))
        if row["cohort"] == "customer"
        else SEPARATOR.join(("overall", row["tier"], row["metric"]))
        for row in svr_rm
    ] + [SEPARATOR.join(("region", row["region"], row["metric"])) for row in sellout]
    assert (len(keys), len(set(keys))) == (SERIES, SERIES)  # every series once, none twice
    assert {row["forecast_run_id"] for row in [*svr_rm, *sellout]} == {run["forecast_run_id"]}

    # Who did what: each replica logs every batch it forecast; together they are the run's 80 batches.
    done = {
        log.name: [line for line in log_lines(log, "forecast_batch_done") if line.get("forecast_run_id") == run[0]]
        for log in logs
    }
    batches = Counter(int(str(line["batch_number"])) for lines in done.values() for line in lines)
    assert sorted(batches) == list(range(SERIES // BATCH_SERIES))
    assert set(batches.values()) == {1}
    series_per_replica = {name: sum(int(str(line["series"])) for line in lines) for name, lines in done.items()}
    assert sum(series_per_replica.values()) == SERIES
    assert all(count > 0 for count in series_per_replica.values()), series_per_replica
