"""One benchmark report: every benchmark of bench/, run in turn, in one JSON file and one markdown table.

    uv run python bench/run.py [--quick] [--workdir data/processed/bench] [--out bench/results]

Runs, each in a process of its own, printing its progress as it goes:
  ingestion_speed.py   ingestion vs bare fastexcel vs pandas/openpyxl, default sample and 1M lines, peak RSS
  pipeline_runs.py     drop -> activation.completed (median of 5) split into detection, stages, hops, tail;
                       idle footprint of the four services after a run; peak RSS per service on 1M lines
  bus_latency.py       publish -> handler latency over 1,000 events on a real NATS JetStream
  transform_steps.py   the transform step by step; dbt build on the warm runner vs a cold CLI process
  forecast_*.py        the forecast's own benchmarks (tourism accuracy and time, speed by series count and
                       replicas, idle), when present: their last stdout line is one JSON object
and writes bench/results/<timestamp>.json (every figure) and bench/results/<timestamp>.md (a table: each figure
beside what it is compared with, the target of issue 14 where there is one, and by how much it is missed).
--quick: the default sample only, fewer runs and events, no cold dbt process, a short idle window (a few
minutes). The whole full run is meant to stay under 15 minutes on a 2-core machine.
The machine may be shared: compare figures measured in the same run (ratios), not absolutes across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DEFAULT_WORKDIR = REPO / "data" / "processed" / "bench"
MIB_PER_GIB = 1024

# Issue 14's figures before this work (same kind of machine), and its targets.
BEFORE = {
    "drop_to_activation_s": "19.6-22.2",
    "detection_s": "4.5-5.2",
    "hops_s": "0.005-0.009",
    "transform_s": "~12",
    "dbt_s": "~7.5",
    "idle_rss_gib": "~1.9",
    "tourism_s": "~300",
}
TARGETS = {
    "drop_to_activation_s": 12.0,
    "detection_s": 1.0,
    "overhead_s": 1.5,
    "idle_rss_mib": 0.75 * MIB_PER_GIB,
    "idle_cpu_percent": 1.0,
    "tourism_s": 30.0,
    "ingestion_over_bare": 1.2,
    "pandas_over_ingestion": 15.0,
}


@dataclass
class Benchmark:
    name: str
    script: str
    args: list[str]
    timeout: float
    result: dict[str, Any] | None = None
    seconds: float = 0.0
    error: str | None = None
    log: list[str] = field(default_factory=list)


def plan(quick: bool, workdir: Path) -> list[Benchmark]:
    work = ["--workdir", str(workdir)]
    if quick:
        benchmarks = [
            Benchmark(
                "ingestion_default",
                "ingestion_speed.py",
                [*work, "--rows", "200000", "--repeat", "1", "--pandas-timeout", "90"],
                600,
            ),
            Benchmark(
                "pipeline",
                "pipeline_runs.py",
                [*work, "--runs", "2", "--big-rows", "0", "--settle-seconds", "45", "--idle-seconds", "15"],
                900,
            ),
            Benchmark("bus_latency", "bus_latency.py", ["--events", "200"], 300),
            Benchmark("transform_steps", "transform_steps.py", [*work, "--sizes", "200000", "--skip-cold"], 600),
        ]
    else:
        benchmarks = [
            Benchmark(
                "ingestion_default",
                "ingestion_speed.py",
                [*work, "--rows", "200000", "--repeat", "3", "--pandas-timeout", "120"],
                600,
            ),
            Benchmark(
                "ingestion_1m",
                "ingestion_speed.py",
                [*work, "--rows", "1000000", "--repeat", "2", "--pandas-timeout", "150"],
                900,
            ),
            Benchmark("pipeline", "pipeline_runs.py", [*work, "--runs", "5", "--big-rows", "1000000"], 1500),
            Benchmark("bus_latency", "bus_latency.py", ["--events", "1000"], 600),
            Benchmark("transform_steps", "transform_steps.py", [*work, "--sizes", "200000"], 900),
        ]
    for script in ("forecast_tourism.py", "forecast_speed.py", "forecast_idle.py"):
        if (BENCH / script).exists():
            benchmarks.append(Benchmark(script.removesuffix(".py"), script, forecast_args(script, quick), 900))
    return benchmarks


def forecast_args(script: str, quick: bool) -> list[str]:
    """The forecast helper's scripts take their own options; --quick only where the script has it."""
    if not quick:
        return []
    helped = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, check=False, timeout=120
    )
    return ["--quick"] if "--quick" in helped.stdout else []


def run(benchmark: Benchmark, number: int, total: int) -> None:
    """Run one benchmark, echoing its output as progress; its last stdout line is its JSON result."""
    print(f"\n[{number}/{total}] {benchmark.name}: {benchmark.script} {' '.join(benchmark.args)}", flush=True)
    started = time.perf_counter()
    command = [sys.executable, "-u", str(BENCH / benchmark.script), *benchmark.args]
    with subprocess.Popen(
        command, cwd=BENCH, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        deadline = started + benchmark.timeout
        for line in process.stdout:
            benchmark.log.append(line.rstrip("\n"))
            if not line.lstrip().startswith("{"):
                print(f"    {line.rstrip()[:160]}", flush=True)
            if time.perf_counter() > deadline:
                process.kill()
                benchmark.error = f"timed out after {benchmark.timeout:.0f} s"
                break
        code = process.wait()
    benchmark.seconds = time.perf_counter() - started
    last = next((line for line in reversed(benchmark.log) if line.lstrip().startswith("{")), None)
    if code != 0 and benchmark.error is None:
        benchmark.error = f"exit code {code}: " + " | ".join(benchmark.log[-5:])[-600:]
    if last is not None and benchmark.error is None:
        try:
            benchmark.result = json.loads(last)
        except json.JSONDecodeError as error:
            benchmark.error = f"last line is not JSON: {error}"
    elif benchmark.error is None:
        benchmark.error = "no JSON line in the output"
    status = "ok" if benchmark.error is None else f"FAILED ({benchmark.error[:200]})"
    print(f"[{number}/{total}] {benchmark.name}: {status} in {benchmark.seconds:.0f} s", flush=True)


# --------------------------------------------------------------------------- the table


def verdict(value: float | None, target: float, *, at_most: bool = True, unit: str = "") -> str:
    if value is None:
        return "not measured"
    if (value <= target) if at_most else (value >= target):
        return "met"
    missed = value - target if at_most else target - value
    share = missed / target * 100
    return f"missed by {missed:.2f}{unit} ({share:.0f} %)"


def rows_ingestion(name: str, result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    ingestion, bare, pandas = result["ingestion"], result["bare_fastexcel"], result.get("pandas_openpyxl")
    lines = f"{result['hardware_lines'] * 1.1:,.0f} lines"
    rows = [
        (
            f"ingestion ({lines}): sha256 + split to parquet",
            f"{ingestion['best_seconds']:.2f} s, peak {ingestion['peak_rss_mib']:.0f} MiB",
            f"bare fastexcel {bare['best_seconds']:.2f} s, peak {bare['peak_rss_mib']:.0f} MiB",
            f"ingestion / bare <= {TARGETS['ingestion_over_bare']} (ingestion_speed.py's goal)",
            f"{result['ratio_ingestion_over_bare']:.2f}: "
            + verdict(result["ratio_ingestion_over_bare"], TARGETS["ingestion_over_bare"]),
        )
    ]
    if pandas is not None:
        bound = ">= " if pandas.get("lower_bound") else ""
        rss = pandas.get("peak_rss_mib")
        ratio = result["ratio_pandas_over_ingestion"]
        rows.append(
            (
                f"pandas/openpyxl ({lines})",
                f"{bound}{pandas['seconds']:.1f} s" + (f", peak {rss:.0f} MiB" if rss else ""),
                f"ingestion {ingestion['best_seconds']:.2f} s",
                f"pandas / ingestion >= {TARGETS['pandas_over_ingestion']:.0f} (ingestion_speed.py's goal)",
                f"{bound}{ratio:.1f}: " + verdict(ratio, TARGETS["pandas_over_ingestion"], at_most=False),
            )
        )
    return rows


def rows_pipeline(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    median = result["median"]
    runs = len(result["runs"])
    stages = median["stages"]
    rows = [
        (
            f"drop -> activation.completed (median of {runs})",
            f"{median['total']:.2f} s",
            f"before: {BEFORE['drop_to_activation_s']} s",
            f"<= {TARGETS['drop_to_activation_s']:.0f} s",
            verdict(median["total"], TARGETS["drop_to_activation_s"], unit=" s"),
        ),
        (
            "  detection (rename onto the share -> ingestion starts)",
            f"{median['detection']:.2f} s",
            f"before: {BEFORE['detection_s']} s",
            f"<= {TARGETS['detection_s']:.0f} s",
            verdict(median["detection"], TARGETS["detection_s"], unit=" s"),
        ),
    ]
    rows += [(f"  stage: {stage}", f"{seconds:.2f} s", "", "", "") for stage, seconds in stages.items()]
    rows += [(f"  hop {hop}", f"{seconds * 1000:.0f} ms", "", "", "") for hop, seconds in median["hops"].items()]
    rows += [
        ("  tail (activation's end -> event received)", f"{median['tail'] * 1000:.0f} ms", "", "", ""),
        (
            "  orchestration overhead (total - stages' own seconds)",
            f"{median['overhead']:.2f} s",
            f"stages' own {sum(stages.values()):.2f} s",
            f"<= {TARGETS['overhead_s']} s",
            verdict(median["overhead"], TARGETS["overhead_s"], unit=" s"),
        ),
    ]
    for key, label in (("idle_after_default", "after the default runs"), ("idle_after_big", "after the 1M run")):
        idle = result.get(key)
        if idle is None:
            continue
        per_service = ", ".join(f"{name} {mib:.0f}" for name, mib in idle["rss_mib"].items())
        rows += [
            (
                f"idle RSS, four services {label}",
                f"{idle['rss_total_mib']:.0f} MiB ({per_service})",
                f"before: {BEFORE['idle_rss_gib']} GiB",
                f"<= {TARGETS['idle_rss_mib']:.0f} MiB",
                verdict(idle["rss_total_mib"], TARGETS["idle_rss_mib"], unit=" MiB"),
            ),
            (
                f"idle CPU over {idle['seconds']:.0f} s {label}",
                f"{idle['cpu_percent_of_machine']:.2f} % of {idle['cpus']} cores",
                "",
                f"< {TARGETS['idle_cpu_percent']:.0f} %",
                verdict(idle["cpu_percent_of_machine"], TARGETS["idle_cpu_percent"], unit=" points"),
            ),
        ]
    if "big_peak_tree_mib" in result:
        peaks = result["big_peak_tree_mib"]
        marks = result.get("big_high_water_main_mib", {})
        rows.append(
            (
                f"peak RSS per service, {result['big_run']['total']:.0f} s run of the 1M-line workbook",
                ", ".join(f"{name} {mib:.0f} MiB" for name, mib in peaks.items()),
                "main processes' VmHWM: "
                + ", ".join(f"{name} {mib:.0f}" for name, mib in marks.items() if mib is not None),
                "",
                "",
            )
        )
    return rows


def rows_bus(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    latency, ack = result["publish_to_handler"], result["publish_ack"]
    return [
        (
            f"publish -> handler, {result['events']:,} events on JetStream",
            f"p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms",
            f"publish ack alone: p50 {ack['p50_ms']:.1f} ms, p99 {ack['p99_ms']:.1f} ms",
            "",
            "",
        )
    ]


def rows_transform(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = [
        (
            "dbt warm-up once per process (import dbt + parse)",
            f"{result['dbt_warm_up_seconds']:.2f} s",
            "",
            "",
            "",
        )
    ]
    for size in result["sizes"]:
        warm = size["dbt_second"]["seconds"]
        cold = size.get("dbt_cold_process")
        parse = "; ".join(size["dbt_second"].get("parse_log") or ["no parse"])
        rows.append(
            (
                f"dbt build aside, warm runner ({size['lines']:,} lines)",
                f"{warm:.2f} s ({parse})",
                (
                    f"cold CLI process {cold['process_wall_seconds']:.2f} s"
                    f" ({cold['process_wall_seconds'] / warm:.1f}x)"
                    if cold
                    else "cold process skipped"
                ),
                "",
                "",
            )
        )
        rows.append(
            (
                f"transform stage's steps in-process ({size['lines']:,} lines)",
                f"{size['transform_seconds']:.2f} s",
                f"before: transform {BEFORE['transform_s']} s, dbt {BEFORE['dbt_s']} s",
                "",
                "",
            )
        )
    return rows


def rows_forecast(name: str, result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """The forecast helper's JSON, shown as it comes (its scripts name their own figures)."""
    scalars = {key: value for key, value in result.items() if isinstance(value, int | float | str | bool)}
    text = ", ".join(
        f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}" for key, value in scalars.items()
    )
    seconds = next((result[key] for key in ("seconds", "total_seconds", "wall_seconds") if key in result), None)
    runs = result.get("runs")
    if isinstance(runs, list) and all(isinstance(run, dict) for run in runs):  # forecast_speed: one row per run
        rows = [
            (
                f"{name}: {run.get('series')} series, {run.get('replicas')} replica(s)",
                f"{run.get('seconds')} s",
                f"pool start {run.get('pool_start_seconds')} s, batches per replica {run.get('batches_per_replica')}",
                "",
                "",
            )
            for run in runs
        ]
        speedup = result.get("speedup_2_vs_1_replica")
        if speedup:
            rows.append((f"{name}: 2 replicas vs 1 (speed-up)", json.dumps(speedup), "", "", ""))
        return rows
    target = ""
    judged = ""
    if name == "forecast_tourism" and isinstance(seconds, int | float):
        target = f"<= {TARGETS['tourism_s']:.0f} s"
        judged = verdict(float(seconds), TARGETS["tourism_s"], unit=" s")
    return [
        (
            name,
            text[:400] or json.dumps(result)[:400],
            f"before: {BEFORE['tourism_s']} s" if target else "",
            target,
            judged,
        )
    ]


def markdown(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str, str]] = []
    failures = []
    for name, entry in results["benchmarks"].items():
        result = entry.get("result")
        if result is None:
            failures.append(f"- {name}: {entry.get('error')}")
            continue
        if name.startswith("ingestion"):
            rows += rows_ingestion(name, result)
        elif name == "pipeline":
            rows += rows_pipeline(result)
        elif name == "bus_latency":
            rows += rows_bus(result)
        elif name == "transform_steps":
            rows += rows_transform(result)
        else:
            rows += rows_forecast(name, result)
    lines = [
        f"# Benchmark report {results['started_at']}",
        "",
        f"{'quick' if results['quick'] else 'full'} run, {results['cpus']} cores, load average at start"
        f" {results['load_average_at_start']}, {results['seconds']:.0f} s in all. Figures in one row were measured"
        " in the same run; the machine may have been shared, so compare ratios rather than absolutes across runs.",
        "",
        "| figure | measured | compared with | target | verdict |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(cell.replace('|', '/') for cell in row)} |" for row in rows]
    if failures:
        lines += ["", "Benchmarks that did not finish:", *failures]
    lines += [
        "",
        "Seconds per benchmark: " + ", ".join(f"{k} {v['seconds']:.0f}" for k, v in results["benchmarks"].items()),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small version: a few minutes")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="cache for workbooks")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="where the report goes")
    parser.add_argument("--only", default=None, help="comma-separated benchmark names (default: all)")
    parser.add_argument("--table", type=Path, default=None, help="re-render a results JSON as markdown")
    args = parser.parse_args(argv)
    if args.table is not None:
        args.table.with_suffix(".md").write_text(markdown(json.loads(args.table.read_text())))
        return 0
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    benchmarks = plan(args.quick, args.workdir.resolve())
    if args.only:
        wanted = set(args.only.split(","))
        benchmarks = [benchmark for benchmark in benchmarks if benchmark.name in wanted]
    load = os.getloadavg()
    for number, benchmark in enumerate(benchmarks, 1):
        run(benchmark, number, len(benchmarks))
    results = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "quick": args.quick,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(value, 2) for value in load],
        "seconds": time.perf_counter() - started,
        "before": BEFORE,
        "targets": TARGETS,
        "benchmarks": {
            benchmark.name: {
                "script": benchmark.script,
                "args": benchmark.args,
                "seconds": benchmark.seconds,
                "error": benchmark.error,
                "result": benchmark.result,
            }
            for benchmark in benchmarks
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    json_path, markdown_path = args.out / f"{stamp}.json", args.out / f"{stamp}.md"
    json_path.write_text(json.dumps(results, indent=2, default=str))
    table = markdown(results)
    markdown_path.write_text(table)
    print("\n" + table)
    print(f"results: {json_path}\n         {markdown_path}")
    return 0 if all(benchmark.error is None for benchmark in benchmarks) else 1


if __name__ == "__main__":
    sys.exit(main())
