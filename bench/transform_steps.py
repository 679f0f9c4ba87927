"""Transform steps: seconds per step of the transform stage, for the default sample and 1M lines.

    uv run python bench/transform_steps.py [--sizes 200000,1000000] [--workdir data/processed/bench]

For each size (hardware lines over 2 years, seed 7, the project's generator; C2 sheets add 10 %; the
workbook is cached in --workdir, shared with bench/ingestion_speed.py), ingestion's split runs first,
then the transform's steps in the order of `transform_workbook` (services/transform/.../handlers.py),
in this process, against an embedded PostgreSQL:

    load_reference -> clean_sales per sheet -> concat -> previous rows -> COPY load + analyze (ref + lines, one
    transaction) -> dbt build (warm runner) -> quality gates (mart totals + run_quality_gates) ->
    mart row counts

The warm runner is warmed once (`WarmDbt.warm_up`: import dbt + parse), timed apart. Each size then
builds twice: its snapshot, and the same lines loaded again as a second snapshot, so the second build
shows what a warm runner pays per event (dbt's log says whether it re-parsed fully or partly). Before
each build the planner's row estimate for the snapshot is printed next to the real count:
`replace_snapshot_lines` ends with `analyze raw.sales_lines`; without it the planner guesses a handful
of rows for a freshly copied snapshot and dbt builds take 2-5x longer. A cold build in a fresh
interpreter (import dbt + full parse + build, what a process per event would pay) runs last, once per
size. The machine is shared: compare steps and ratios, not absolutes.
Results go to <workdir>/transform_steps.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from syno_ingestion.workbook import split_sheets
from syno_shared import db, migrate
from syno_shared.embedded import embedded_runtime
from syno_shared.fingerprint import file_sha256
from syno_transform import warehouse
from syno_transform.cleaning import clean_sales
from syno_transform.dbt_runner import WarmDbt
from syno_transform.quality import load_gates, run_quality_gates
from syno_transform.reference import load_reference

REPO = Path(__file__).resolve().parents[1]
MAPPING_DIR = REPO / "data" / "mapping_table"
DBT_DIR = REPO / "dbt"
DEFAULT_WORKDIR = REPO / "data" / "processed" / "bench"
VARIABLES = {"top_customers": 20}
T = TypeVar("T")

# The lines of dbt.log (debug level) that tell how an invocation parsed the project.
PARSE_MESSAGES = re.compile(
    r"(Unable to do partial parsing[^\n]*|Partial parse save file not found[^\n]*|"
    r"Partial parsing enabled[^\n]*|Partial parsing: [^\n]*|Starting full parse[^\n]*)",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- workbook


def ensure_workbook(workdir: Path, rows: int, seed: int) -> Path:
    """The cached sample workbook (same name and content as bench/ingestion_speed.py writes)."""
    path = workdir / f"sellout-{rows}rows-seed{seed}.xlsx"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        print(f"writing {path.name} ...", flush=True)
        code = (
            "import sys; from pathlib import Path; from syno_sample.workbook import SampleSpec, write_workbook; "
            "write_workbook(Path(sys.argv[1]), SampleSpec(years=(2023, 2024), rows_per_year=int(sys.argv[2]), "
            "seed=int(sys.argv[3])), Path(sys.argv[4]))"
        )
        subprocess.run(
            [sys.executable, "-c", code, str(partial), str(rows // 2), str(seed), str(MAPPING_DIR)], check=True
        )
        partial.rename(path)
    return path


# --------------------------------------------------------------------------- dbt helpers


def parse_notes(log_path: Path, offset: int) -> tuple[list[str], int]:
    """What dbt.log says about parsing since offset, and the new offset."""
    if not log_path.exists():
        return [], offset
    with log_path.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
        end = handle.tell()
    return sorted(set(match.strip() for match in PARSE_MESSAGES.findall(text))), end


COLD_BUILD = """
import json, sys, time
started = time.perf_counter()
import dbt.cli.main  # noqa: F401
imported = time.perf_counter()
from pathlib import Path
from syno_transform.dbt_runner import WarmDbt
dbt = WarmDbt(project_dir=Path(sys.argv[1]), target_path=Path(sys.argv[2]), pg_dsn=sys.argv[3])
build = dbt.build(sys.argv[4], json.loads(sys.argv[5]))
done = time.perf_counter()
print("RESULT " + json.dumps({"import_seconds": imported - started, "build_seconds": done - imported,
      "is_success": build.is_success, "dbt_elapsed": build.seconds}))
"""


def cold_build(pg_dsn: str, snapshot_id: str, workdir: Path) -> dict[str, Any]:
    """dbt build in a fresh interpreter with a fresh target path: import + full parse + build."""
    with tempfile.TemporaryDirectory(prefix="dbt-cold-", dir=workdir) as target:
        command = [sys.executable, "-c", COLD_BUILD, str(DBT_DIR), target, pg_dsn, snapshot_id, json.dumps(VARIABLES)]
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        notes, _ = parse_notes(Path(target) / "logs" / "dbt.log", 0)
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"cold dbt build failed:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    result["process_wall_seconds"] = wall
    result["parse_log"] = notes
    return result


# --------------------------------------------------------------------------- the steps


class Steps:
    """Seconds per named step, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def run(self, name: str, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        value = work()
        self.seconds[name] = time.perf_counter() - started
        return value

    async def run_async(self, name: str, work: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        value = await work()
        self.seconds[name] = time.perf_counter() - started
        return value


async def load_lines(pool: Any, reference: Any, snapshot_id: str, lines: pl.DataFrame, steps: Steps, tag: str) -> None:
    """The COPY load exactly as the handler does it: reference + snapshot lines in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        await steps.run_async(f"{tag} ref tables", lambda: warehouse.load_reference(connection, reference))
        await steps.run_async(
            f"{tag} sales lines (delete + COPY + analyze)",
            lambda: warehouse.replace_snapshot_lines(connection, snapshot_id, lines),
        )


def node_timings(target_path: Path, top: int = 5) -> dict[str, Any]:
    """Seconds by resource type and the slowest nodes, from the build's run_results.json."""
    path = target_path / "run_results.json"
    if not path.exists():
        return {}
    results = json.loads(path.read_text()).get("results", [])
    by_type: dict[str, float] = {}
    for result in results:
        kind = result["unique_id"].split(".", 1)[0]
        by_type[kind] = by_type.get(kind, 0.0) + float(result.get("execution_time") or 0.0)
    slowest = sorted(results, key=lambda r: -float(r.get("execution_time") or 0.0))[:top]
    return {
        "seconds_by_type": by_type,
        "slowest": {r["unique_id"]: round(float(r.get("execution_time") or 0.0), 2) for r in slowest},
    }


async def stats_state(pool: Any, snapshot_id: str) -> dict[str, Any]:
    """What the planner believes about raw.sales_lines for this snapshot (autovacuum analyzes on its own
    clock): its estimate of the snapshot's rows, and the table's reltuples."""
    plan = await pool.fetchval(
        "explain (format json) select * from raw.sales_lines where snapshot_id = $1", snapshot_id
    )
    estimate = json.loads(plan)[0]["Plan"]["Plan Rows"]
    reltuples = await pool.fetchval("select reltuples::bigint from pg_class where oid = 'raw.sales_lines'::regclass")
    return {"planner_rows_for_snapshot": int(estimate), "reltuples": int(reltuples)}


async def build(dbt: WarmDbt, snapshot_id: str, log_offset: int, pool: Any) -> tuple[dict[str, Any], int]:
    stats = await stats_state(pool, snapshot_id)
    started = time.perf_counter()
    result = await asyncio.to_thread(dbt.build, snapshot_id, VARIABLES)
    seconds = time.perf_counter() - started
    if not result.is_success:
        raise RuntimeError(f"dbt build failed: {result.failed_nodes or result.error}")
    notes, log_offset = parse_notes(dbt.target_path / "logs" / "dbt.log", log_offset)
    return {
        "seconds": seconds,
        "dbt_elapsed": result.seconds,
        "models": len(result.models_built),
        "marts": result.marts,
        "tests_passed": result.tests_passed,
        "tests_warned": result.tests_warned,
        "parse_log": notes,
        "raw_stats_before": stats,
        **node_timings(dbt.target_path),
    }, log_offset


async def transform_size(
    pool: Any, dbt: WarmDbt, workbook: Path, workdir: Path, log_offset: int, cold: bool, pg_dsn: str
) -> tuple[dict[str, Any], int]:
    steps = Steps()
    snapshot_id = steps.run("ingestion: sha256", lambda: file_sha256(workbook))
    out_dir = workdir / "transform-split" / snapshot_id
    sheets = steps.run("ingestion: split_sheets", lambda: split_sheets(workbook, out_dir))

    # --- transform_workbook, step by step ---
    reference = steps.run("load_reference", lambda: load_reference(MAPPING_DIR))
    cleaned = []
    for sheet in sheets:
        cleaned.append(
            steps.run(
                f"clean_sales [{sheet.sheet.name}]",
                lambda s=sheet: clean_sales(
                    pl.scan_parquet(s.parquet_path),
                    sheet_name=s.sheet.name,
                    snapshot_id=snapshot_id,
                    reference=reference,
                ),
            )
        )
    lines = steps.run("concat lines", lambda: pl.concat([r.lines for r in cleaned]))
    previous_rows = await steps.run_async(
        "previous rows (ops query)", lambda: warehouse.previous_snapshot_rows(pool, snapshot_id)
    )
    await steps.run_async(
        "COPY load + analyze (one transaction)",
        lambda: load_lines(pool, reference, snapshot_id, lines, steps, "  of which"),
    )
    first, log_offset = await build(dbt, snapshot_id, log_offset, pool)
    steps.seconds["dbt build (warm runner, 1st snapshot)"] = first["seconds"]

    async def quality() -> list[Any]:
        totals = await warehouse.mart_quarter_totals(pool)
        return run_quality_gates(load_gates(), lines=lines, previous_rows=previous_rows, mart_quarter_totals=totals)

    gates = await steps.run_async("quality gates", quality)
    mart_rows = await steps.run_async("mart row counts", lambda: warehouse.mart_row_counts(pool, first["marts"]))

    # --- the same lines as a second snapshot: what a warm runner pays on the next event ---
    second_id = hashlib.sha256(f"{snapshot_id}:second".encode()).hexdigest()
    second_lines = lines.with_columns(pl.lit(second_id).alias("snapshot_id"))
    again = Steps()
    await again.run_async(
        "COPY load", lambda: load_lines(pool, reference, second_id, second_lines, again, "  of which")
    )
    second, log_offset = await build(dbt, second_id, log_offset, pool)

    cold_result = cold_build(pg_dsn, second_id, workdir) if cold else None
    transform_seconds = sum(
        seconds for name, seconds in steps.seconds.items() if not name.startswith(("ingestion", "  of which"))
    )
    return {
        "workbook": workbook.name,
        "snapshot_id": snapshot_id,
        "sheet_rows": {sheet.sheet.name: sheet.rows for sheet in sheets},
        "lines": lines.height,
        "steps": steps.seconds,
        "transform_seconds": transform_seconds,
        "dbt_first": first,
        "dbt_second": second,
        "second_copy_load_seconds": again.seconds["COPY load"],
        "dbt_cold_process": cold_result,
        "gates": {gate.name: {"passed": gate.passed, "observed": gate.observed} for gate in gates},
        "mart_rows": mart_rows,
    }, log_offset


async def run(args: argparse.Namespace, pg_dsn: str, workbooks: list[Path]) -> dict[str, Any]:
    pool = await db.create_pool(pg_dsn)
    target: Path | None = None
    try:
        migrations_started = time.perf_counter()
        sources = migrate.installed_sources(("ops", "transform"))
        await asyncio.to_thread(migrate.apply_migrations, pg_dsn, sources)
        migrations_seconds = time.perf_counter() - migrations_started
        target = Path(tempfile.mkdtemp(prefix="dbt-target-", dir=args.workdir))
        dbt = WarmDbt(project_dir=DBT_DIR, target_path=target, pg_dsn=pg_dsn)
        started = time.perf_counter()
        await asyncio.to_thread(dbt.warm_up, VARIABLES)
        warm_up_seconds = time.perf_counter() - started
        warm_up_log, log_offset = parse_notes(target / "logs" / "dbt.log", 0)
        sizes = []
        for workbook in workbooks:
            print(f"transforming {workbook.name} ...", flush=True)
            result, log_offset = await transform_size(
                pool, dbt, workbook, args.workdir, log_offset, not args.skip_cold, pg_dsn
            )
            sizes.append(result)
        return {
            "migrations_seconds": migrations_seconds,
            "dbt_warm_up_seconds": warm_up_seconds,
            "dbt_warm_up_parse_log": warm_up_log,
            "sizes": sizes,
        }
    finally:
        await pool.close()
        shutil.rmtree(args.workdir / "transform-split", ignore_errors=True)
        if target is not None:
            shutil.rmtree(target, ignore_errors=True)


def report(results: dict[str, Any]) -> None:
    sizes = results["sizes"]
    width = 50
    print()
    print(f"{'step (seconds)':<{width}}" + "".join(f"{s['lines']:>14,}" for s in sizes))
    print(f"{'':<{width}}" + "".join(f"{'lines':>14}" for _ in sizes))
    names = list(dict.fromkeys(name for size in sizes for name in size["steps"]))
    for name in names:
        cells = "".join(f"{size['steps'][name]:>14.2f}" if name in size["steps"] else f"{'':>14}" for size in sizes)
        print(f"{name:<{width}}{cells}")
    print(
        f"{'transform total (excl. ingestion)':<{width}}" + "".join(f"{s['transform_seconds']:>14.2f}" for s in sizes)
    )
    print()
    print(f"dbt warm-up (import dbt + parse), once per process: {results['dbt_warm_up_seconds']:.2f} s")
    for line in results["dbt_warm_up_parse_log"]:
        print(f"    log: {line}")
    print(f"{'dbt build (seconds)':<{width}}" + "".join(f"{s['lines']:>14,}" for s in sizes))
    rows = [
        ("warm runner, 1st snapshot", lambda s: s["dbt_first"]["seconds"]),
        ("warm runner, 2nd snapshot", lambda s: s["dbt_second"]["seconds"]),
        ("  dbt's own elapsed (2nd)", lambda s: s["dbt_second"]["dbt_elapsed"]),
    ]
    if all(s["dbt_cold_process"] for s in sizes):
        rows += [
            ("cold process: import dbt", lambda s: s["dbt_cold_process"]["import_seconds"]),
            ("cold process: full parse + build", lambda s: s["dbt_cold_process"]["build_seconds"]),
            ("cold process: wall incl. interpreter", lambda s: s["dbt_cold_process"]["process_wall_seconds"]),
            (
                "cold wall - warm 2nd build",
                lambda s: s["dbt_cold_process"]["process_wall_seconds"] - s["dbt_second"]["seconds"],
            ),
            (
                "cold wall / warm 2nd build",
                lambda s: s["dbt_cold_process"]["process_wall_seconds"] / s["dbt_second"]["seconds"],
            ),
        ]
    for label, value in rows:
        print(f"{label:<{width}}" + "".join(f"{value(s):>14.2f}" for s in sizes))
    for size in sizes:
        print(
            f"\n{size['lines']:,} lines: models {size['dbt_second']['models']}, tests passed "
            f"{size['dbt_second']['tests_passed']}, gates {size['gates']}"
        )
        for which in ("dbt_first", "dbt_second"):
            data = size[which]
            by_type = ", ".join(f"{kind} {sec:.1f}" for kind, sec in data.get("seconds_by_type", {}).items())
            stats = data["raw_stats_before"]
            print(
                f"  {which}: {data['seconds']:.1f} s ({by_type}); planner's rows for the snapshot"
                f" {stats['planner_rows_for_snapshot']:,} (actual {size['lines']:,}), reltuples {stats['reltuples']:,}"
            )
            print(f"    slowest: {data.get('slowest')}")
            for line in data["parse_log"]:
                print(f"    log: {line}")
        if size["dbt_cold_process"]:
            for line in size["dbt_cold_process"]["parse_log"]:
                print(f"    cold log: {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="cache for workbooks and results")
    parser.add_argument("--sizes", default="200000,1000000", help="hardware lines per workbook, comma-separated")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold dbt build in a fresh interpreter")
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    workbooks = [ensure_workbook(args.workdir, int(size), args.seed) for size in args.sizes.split(",")]
    started = time.perf_counter()
    with embedded_runtime(None, None) as endpoints:
        pg_seconds = time.perf_counter() - started
        results = asyncio.run(run(args, endpoints.pg_dsn, workbooks))
    results["embedded_postgres_start_seconds"] = pg_seconds
    results["cpus"] = os.cpu_count()
    report(results)
    out = args.workdir / "transform_steps.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
