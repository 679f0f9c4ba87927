"""Speed benchmark: forecast seconds for 100, 1,000 and 5,000 customer-like series with 1 and 2 forecast
replicas, each a `python -m syno_forecast` process as in production, sharing the work queue.

    uv run python bench/forecast_speed.py [--sizes 100,1000,5000] [--replicas 1,2] [--processes 1]

Embedded NATS and PostgreSQL, migrations applied as the owner; each replica logs in with the forecast
service's own credentials. Each run's series are cut into the service's work batches (``make_batches``,
25 series each) and put on the work queue as a coordinating replica does; timed from the first publish to the
last batch's forecasts in forecast.work_results (the marts read and the final table write, a second or two,
are left out). Before the timed runs every replica forecasts a few warm-up batches, so the worker pools are
started (the service starts them with its first batch after an idle spell: ~6 s of imports, timed apart as
``pool_start_seconds``) and the pools stay up for the whole benchmark.

``--processes`` is each replica's pool (SYNO_FORECAST__PROCESSES); the default of 1 makes "2 replicas" use
the machine's 2 cores where "1 replica" uses one, so the ratio shows what the work queue spreads.

Series are synthetic and seeded: 8-12 complete quarters (each customer starts in a random quarter), a
level, a trend and a seasonal shape per customer, noise, revenue = quantity x a drifting price; about a
fifth of the customers buy irregularly (intermittent), a few stop buying (all zero), and most have rows in
the partial current quarter. The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import date
from pathlib import Path

import asyncpg
import numpy as np
import polars as pl

from syno_cli.pipeline import service_env
from syno_forecast.coordinator import publish_batches
from syno_forecast.series import build_quarterly_series
from syno_forecast.settings import ForecastOptions
from syno_forecast.workqueue import make_batches
from syno_shared import bus, migrate
from syno_shared.embedded import Endpoints, embedded_runtime
from syno_shared.quarters import add_quarters
from syno_shared.settings import Settings

LAST_COMPLETE = date(2025, 4, 1)
REPO = Path(__file__).resolve().parent.parent
WARM_UP_BATCHES_PER_REPLICA = 4


def customer_frame(customers: int, seed: int = 7) -> pl.DataFrame:
    """Long (series_id, quarter, value) frame, two metrics per customer, partial current quarter included."""
    rng = np.random.default_rng(seed)
    ids, quarters, values = [], [], []
    for number in range(customers):
        length = int(rng.integers(8, 13))
        first = add_quarters(LAST_COMPLETE, -(length - 1))
        level = float(rng.lognormal(4.0, 1.0))
        trend = float(rng.normal(0.01, 0.04))
        season = 1 + rng.normal(0, 0.15, 4)
        price = float(rng.lognormal(6.0, 0.5))
        kind = rng.choice(["smooth", "intermittent", "stopped"], p=[0.77, 0.2, 0.03])
        for step in range(length + 1):  # the extra step is the partial current quarter
            quarter = add_quarters(first, step)
            quantity = level * (1 + trend) ** step * season[quarter.month // 3] * rng.lognormal(0, 0.2)
            if kind == "intermittent" and rng.random() < 0.55:
                continue  # no row: the series builder fills the zero
            if kind == "stopped":
                quantity = 0.0
            if step == length:
                if rng.random() < 0.3:
                    continue
                quantity *= rng.uniform(0.1, 0.9)  # quarter to date
            quantity = float(np.round(quantity))
            revenue = quantity * price * float(rng.lognormal(0, 0.05)) * (1 + 0.01 * step)
            for metric, value in (("quantity", quantity), ("revenue_usd", revenue)):
                ids.append(f"customer|C{number:05d}|{metric}")
                quarters.append(quarter)
                values.append(value)
    return pl.DataFrame({"series_id": ids, "quarter": quarters, "value": values})


async def forecast_run(endpoints: Endpoints, frame: pl.DataFrame, batch_series: int) -> tuple[float, Counter[str]]:
    """One run's batches through the work queue; seconds until every batch's forecasts are stored, and how
    many batches each replica (worker name) did."""
    series = build_quarterly_series(frame, last_complete_quarter=LAST_COMPLETE)
    forecast_run_id = uuid.uuid4().hex
    batches = make_batches(
        series,
        forecast_run_id=forecast_run_id,
        run_id="speed-bench",
        snapshot_id="speed-bench",
        last_complete_quarter=LAST_COMPLETE,
        batch_series=batch_series,
    )
    broker = bus.create_broker(endpoints.nats_url)
    await broker.start()
    connection = await asyncpg.connect(endpoints.pg_dsn)
    try:
        started = time.perf_counter()
        await publish_batches(broker, batches)
        while True:
            rows = await connection.fetch(
                "select worker, error from forecast.work_results where forecast_run_id = $1", forecast_run_id
            )
            if len(rows) >= len(batches):
                seconds = time.perf_counter() - started
                break
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
        await broker.stop()
    errors = [row["error"] for row in rows if row["error"]]
    if errors:
        raise SystemExit(f"{len(errors)} batch(es) failed, e.g. {errors[0]}")
    return seconds, Counter(str(row["worker"]) for row in rows)


def start_replicas(
    endpoints: Endpoints, settings: Settings, root: Path, count: int, processes: int
) -> list[subprocess.Popen[bytes]]:
    replicas = []
    for number in range(count):
        health = root / f"replica-{number}"
        health.mkdir()
        env = {
            **service_env(settings, endpoints, "forecast"),
            "SYNO_HEALTH_DIR": str(health),
            "SYNO_FORECAST__PROCESSES": str(processes),
            "SYNO_FORECAST__POOL_IDLE_SECONDS": "3600",
        }
        with (health / "forecast.log").open("ab") as log:
            replicas.append(
                subprocess.Popen([sys.executable, "-m", "syno_forecast"], env=env, stdout=log, stderr=subprocess.STDOUT)
            )
    deadline = time.monotonic() + 300
    while not all(list((root / f"replica-{n}").glob("*.health.json")) for n in range(count)):
        if time.monotonic() > deadline or any(replica.poll() is not None for replica in replicas):
            raise SystemExit(f"forecast replicas did not start; see {root}")
        time.sleep(0.3)
    return replicas


def stop(replicas: list[subprocess.Popen[bytes]]) -> None:
    for replica in replicas:
        replica.terminate()
    for replica in replicas:
        try:
            replica.wait(30)
        except subprocess.TimeoutExpired:
            replica.kill()
            replica.wait()


def main(argv: list[str] | None = None) -> int:
    defaults = ForecastOptions()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,5000", help="series per run (even: 2 metrics per customer)")
    parser.add_argument("--replicas", default="1,2", help="replica counts to compare")
    parser.add_argument("--processes", type=int, default=1, help="pool processes per replica")
    parser.add_argument("--batch-series", type=int, default=defaults.batch_series, help="series per work batch")
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 series only (about 3 minutes)")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in ("100,1000" if args.quick else args.sizes).split(",")]
    replica_counts = [int(count) for count in args.replicas.split(",")]

    root = Path(tempfile.mkdtemp(prefix="syno-speed-bench-"))
    for folder in ("raw", "processed", "quarantine"):
        (root / "data" / folder).mkdir(parents=True)
    settings = Settings(data_dir=root / "data", mapping_dir=REPO / "data" / "mapping_table")
    results: list[dict[str, object]] = []
    seconds_of: dict[tuple[int, int], float] = {}
    with embedded_runtime(None, None) as endpoints:
        migrate.apply_migrations(endpoints.pg_dsn, migrate.installed_sources())
        asyncio.run(bus.ensure_streams(endpoints.nats_url, settings.stream_name))
        for count in replica_counts:
            run_root = root / f"replicas-{count}"
            run_root.mkdir()
            replicas = start_replicas(endpoints, settings, run_root, count, args.processes)
            try:
                warm_up = customer_frame(count * args.processes * WARM_UP_BATCHES_PER_REPLICA, seed=99)
                pool_seconds, warmed = asyncio.run(forecast_run(endpoints, warm_up, batch_series=2))
                print(f"{count} replica(s): pools started in {pool_seconds:.1f} s ({dict(warmed)})", flush=True)
                for size in sizes:
                    seconds, workers = asyncio.run(
                        forecast_run(endpoints, customer_frame(size // 2), args.batch_series)
                    )
                    print(
                        f"  {size:>5} series: {seconds:7.1f} s  ({1000 * seconds / size:.1f} ms/series;"
                        f" batches per replica {sorted(workers.values())})",
                        flush=True,
                    )
                    seconds_of[(size, count)] = seconds
                    results.append(
                        {
                            "series": size,
                            "replicas": count,
                            "processes_per_replica": args.processes,
                            "seconds": round(seconds, 2),
                            "batches_per_replica": sorted(workers.values()),
                            "pool_start_seconds": round(pool_seconds, 2),
                        }
                    )
            finally:
                stop(replicas)
    speedups = {
        str(size): round(seconds_of[(size, 1)] / seconds_of[(size, 2)], 2)
        for size in sizes
        if (size, 1) in seconds_of and (size, 2) in seconds_of
    }
    for label, ratio in speedups.items():
        print(f"  {label} series: 2 replicas {ratio}x as fast as 1")
    print(json.dumps({"benchmark": "forecast_speed", "runs": results, "speedup_2_vs_1_replica": speedups}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
