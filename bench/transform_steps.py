"""Transform steps: seconds per step of the transform stage, for the default sample and 1M lines.

    uv run python bench/transform_steps.py [--sizes 200000,1000000] [--workdir data/processed/bench]

For each size (hardware lines over 2 years, seed 7, the project's generator; C2 sheets add 10 %; the
workbook is cached in --workdir, shared with bench/ingestion_speed.py), ingestion's split runs first,
then the transform's steps in the order of `transform_workbook` and `build_and_publish`
(services/transform/.../handlers.py), in this process, against an embedded PostgreSQL (tables from the
installed migrations):

    load_reference -> clean per sheet -> merge -> build lock -> published build + baseline rows ->
    line gates -> COPY load + analyze (ref + lines, one transaction) -> start build (ops row) ->
    dbt build aside (warm runner, into b_<snapshot>_<build>_* schemas) -> mart gates (the build's quarter
    totals + run_mart_gates) -> mart row counts -> publication (checks, lineage, marts.<mart> views,
    completion, raw pruning: one transaction) -> drop old builds

The warm runner is warmed once (`WarmDbt.warm_up`: import dbt + parse), timed apart. Each size then
builds twice: its snapshot, and the same lines loaded again as a second snapshot (built aside and
published again, re-pointing the views), so the second build shows what a warm runner pays per event
(dbt's log says whether it re-parsed fully or partly). Before
each build the planner's row estimate for the snapshot is printed next to the real count:
`replace_snapshot_lines` ends with `analyze raw.sales_lines`; without it the planner guesses a handful
of rows for a freshly copied snapshot and dbt builds take 2-5x longer. A cold build in a fresh
interpreter (import dbt + full parse + build into a build's schemas of its own, dropped afterwards; what
a process per event would pay) runs last, once per size. The machine is shared: compare steps and ratios, not absolutes.
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
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from syno_ingestion.workbook import split_sheets
from syno_shared import db, migrate
from syno_shared.embedded import embedded_runtime
from syno_shared.events import SheetLanded, SnapshotDelta, WorkbookLanded
from syno_shared.fingerprint import file_sha256
from syno_transform import outcome, publication, snapshots, warehouse
from syno_transform.cleaning import CleanResult, clean_workbook
from syno_transform.dbt_runner import WarmDbt
from syno_transform.publication import quoted
from syno_transform.quality import load_gates, run_line_gates, run_mart_gates
from syno_transform.reference import Reference, load_reference
from syno_transform.settings import TransformOptions

REPO = Path(__file__).resolve().parents[1]
MAPPING_DIR = REPO / "data" / "mapping_table"
DBT_DIR = REPO / "dbt"
DEFAULT_WORKDIR = REPO / "data" / "processed" / "bench"
OPTIONS = TransformOptions()  # the service's defaults: dbt vars, raw retention, builds kept
VARIABLES = OPTIONS.dbt_variables()
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
build = dbt.build(sys.argv[4], json.loads(sys.argv[5]), sys.argv[6])
done = time.perf_counter()
print("RESULT " + json.dumps({"import_seconds": imported - started, "build_seconds": done - imported,
      "is_success": build.is_success, "dbt_elapsed": build.seconds}))
"""


def cold_build(pg_dsn: str, snapshot_id: str, build_id: str, workdir: Path) -> dict[str, Any]:
    """dbt build in a fresh interpreter with a fresh target path: import + full parse + build (aside, into the
    schemas of build_id, as the service builds)."""
    with tempfile.TemporaryDirectory(prefix="dbt-cold-", dir=workdir) as target:
        command = [
            sys.executable,
            "-c",
            COLD_BUILD,
            str(DBT_DIR),
            target,
            pg_dsn,
            snapshot_id,
            json.dumps(VARIABLES),
            build_id,
        ]
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


async def load_lines(
    connection: Any, reference: Reference, snapshot_id: str, lines: pl.DataFrame, steps: Steps, tag: str
) -> None:
    """The COPY load as `warehouse.load_snapshot` does it: reference + snapshot lines in one transaction."""
    async with connection.transaction():
        await steps.run_async(f"{tag} ref tables", lambda: warehouse.load_reference(connection, reference))
        await steps.run_async(
            f"{tag} sales lines (delete + COPY + analyze)",
            lambda: warehouse.replace_snapshot_lines(connection, snapshot_id, lines),
        )


def merge_cleaned(results: list[CleanResult]) -> CleanResult:
    """The sheets' results as one, as `clean_workbook` merges them: lines in sheet order, counts summed."""

    def summed(counts: list[pl.DataFrame], key: str) -> pl.DataFrame:
        schema = counts[0].schema
        merged = pl.concat(counts).group_by(key, "value").agg(pl.col("rows").sum())
        return merged.select(schema.names()).cast(dict(schema))

    return CleanResult(
        lines=pl.concat([result.lines for result in results]),
        dropped={reason: sum(result.dropped.get(reason, 0) for result in results) for reason in results[0].dropped},
        unmapped=summed([result.unmapped for result in results], "field"),
        unconvertible=summed([result.unconvertible for result in results], "column"),
    )


def landed_event(workbook: Path, snapshot_id: str, sheets: list[Any], data_dir: Path) -> WorkbookLanded:
    """workbook.landed as ingestion would send it for the split sheets (what marts.ready is built from)."""
    return WorkbookLanded(
        run_id=uuid.uuid4().hex,
        snapshot_id=snapshot_id,
        file_name=workbook.name,
        path=str(workbook.relative_to(data_dir)),
        size_bytes=workbook.stat().st_size,
        delta=SnapshotDelta(is_first=True),
        sheets=[
            SheetLanded(
                name=s.sheet.name,
                kind=s.sheet.kind,
                year=s.sheet.year,
                rows=s.rows,
                columns=s.columns,
                parquet_path=str(s.parquet_path.relative_to(data_dir)),
            )
            for s in sheets
        ],
        contract_version="bench",
        mapping_versions={},
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


async def stats_state(connection: Any, snapshot_id: str) -> dict[str, Any]:
    """What the planner believes about raw.sales_lines for this snapshot (autovacuum analyzes on its own
    clock): its estimate of the snapshot's rows, and the table's reltuples."""
    plan = await connection.fetchval(
        "explain (format json) select * from raw.sales_lines where snapshot_id = $1", snapshot_id
    )
    estimate = json.loads(plan)[0]["Plan"]["Plan Rows"]
    reltuples = await connection.fetchval(
        "select reltuples::bigint from pg_class where oid = 'raw.sales_lines'::regclass"
    )
    return {"planner_rows_for_snapshot": int(estimate), "reltuples": int(reltuples)}


async def build(
    dbt: WarmDbt, snapshot_id: str, build_id: str, log_offset: int, connection: Any
) -> tuple[dict[str, Any], Any, int]:
    """dbt build aside, into the schemas of build_id, on the warm runner."""
    stats = await stats_state(connection, snapshot_id)
    started = time.perf_counter()
    result = await asyncio.to_thread(dbt.build, snapshot_id, VARIABLES, build_id)
    seconds = time.perf_counter() - started
    if failure := outcome.build_failure(result):
        raise RuntimeError(f"dbt build failed: {failure}")
    notes, log_offset = parse_notes(dbt.target_path / "logs" / "dbt.log", log_offset)
    return (
        {
            "seconds": seconds,
            "dbt_elapsed": result.seconds,
            "build_id": build_id,
            "models": len(result.models_built),
            "marts_schema": result.marts_schema,
            "marts": result.marts,
            "tests_passed": result.tests_passed,
            "tests_warned": result.tests_warned,
            "parse_log": notes,
            "raw_stats_before": stats,
            **node_timings(dbt.target_path),
        },
        result,
        log_offset,
    )


async def build_and_publish(
    pool: Any,
    dbt: WarmDbt,
    event: WorkbookLanded,
    reference: Reference,
    cleaned: CleanResult,
    steps: Steps,
    log_offset: int,
    dbt_step: str,
) -> tuple[dict[str, Any], int]:
    """`build_and_publish` of the handler, step by step, under the build lock. A breached gate is reported, not
    a stop: the bench times every step."""
    gates = load_gates()
    async with AsyncExitStack() as stack:
        connection = await steps.run_async(
            "build lock (uncontended)", lambda: stack.enter_async_context(publication.build_lock(pool))
        )

        async def baseline() -> tuple[Any, int | None]:
            published = await publication.published_build(connection)
            return published, await warehouse.baseline_rows(connection, event.snapshot_id, published)

        published, baseline_rows = await steps.run_async("published build + baseline rows (ops queries)", baseline)
        line_gates = steps.run(
            "line gates", lambda: run_line_gates(gates, lines=cleaned.lines, previous_rows=baseline_rows)
        )
        build_id, freshness = snapshots.new_build_id(event.snapshot_id), outcome.data_freshness(cleaned.lines)
        await steps.run_async(
            "COPY load + analyze (one transaction)",
            lambda: load_lines(connection, reference, event.snapshot_id, cleaned.lines, steps, "  of which"),
        )
        await steps.run_async(
            "start build (ops row)",
            lambda: publication.start_build(
                connection,
                build_id=build_id,
                snapshot_id=event.snapshot_id,
                run_id=event.run_id,
                data_freshness=freshness,
                landed_at=event.produced_at,
                rows_loaded=cleaned.lines.height,
            ),
        )
        dbt_result, built, log_offset = await build(dbt, event.snapshot_id, build_id, log_offset, connection)
        steps.seconds[dbt_step] = dbt_result["seconds"]

        async def mart_gates() -> list[Any]:
            totals = await warehouse.mart_quarter_totals(connection, built.marts_schema)
            return run_mart_gates(gates, lines=cleaned.lines, mart_quarter_totals=totals)

        checked = [*line_gates, *await steps.run_async("mart gates (build's totals + run_mart_gates)", mart_gates)]
        mart_rows = await steps.run_async(
            "mart row counts", lambda: warehouse.mart_row_counts(connection, built.marts_schema, built.marts)
        )
        candidate = snapshots.SnapshotAge(data_freshness=freshness, landed_at=event.produced_at)
        choice = snapshots.publication(candidate, published.age if published else None, is_forced=False)
        ready = outcome.marts_ready(
            event, build=built, cleaned=cleaned, gates=checked, mart_rows=mart_rows, publication=choice
        )
        pruned = await steps.run_async(
            "publication (views + ops rows, one transaction)",
            lambda: publication.with_publication_retries(
                connection,
                lambda connection: warehouse.record_run(
                    connection,
                    ready,
                    build_id=build_id,
                    marts=built.marts,
                    previous=published,
                    unmapped=cleaned.unmapped,
                    unconvertible=cleaned.unconvertible,
                    mapping_versions=reference.versions,
                    keep_snapshots=OPTIONS.raw_retention_snapshots,
                ),
            ),
        )
        dropped = await steps.run_async(
            "drop old builds", lambda: publication.drop_old_builds(connection, keep=OPTIONS.published_snapshots_kept)
        )
    dbt_result.update(
        gates={gate.name: {"passed": gate.passed, "observed": gate.observed} for gate in checked},
        breached=[gate.name for gate in outcome.breached_gates(checked)],
        mart_rows=mart_rows,
        publication=choice,
        pruned_rows=pruned,
        dropped_builds=dropped,
    )
    return dbt_result, log_offset


async def transform_size(
    pool: Any, dbt: WarmDbt, workbook: Path, workdir: Path, log_offset: int, cold: bool, pg_dsn: str
) -> tuple[dict[str, Any], int]:
    steps = Steps()
    snapshot_id = steps.run("ingestion: sha256", lambda: file_sha256(workbook))
    out_dir = workdir / "transform-split" / snapshot_id
    sheets = steps.run("ingestion: split_sheets", lambda: split_sheets(workbook, out_dir))
    event = landed_event(workbook, snapshot_id, sheets, workdir)

    # --- transform_workbook, step by step ---
    reference = steps.run("load_reference", lambda: load_reference(MAPPING_DIR))
    cleaned_sheets = []
    for sheet in sheets:
        cleaned_sheets.append(
            steps.run(
                f"clean_sales [{sheet.sheet.name}]",
                lambda s=sheet: clean_workbook(
                    {s.sheet.name: pl.scan_parquet(s.parquet_path)}, snapshot_id=snapshot_id, reference=reference
                ),
            )
        )
    cleaned = steps.run("concat lines + sum counts", lambda: merge_cleaned(cleaned_sheets))
    first, log_offset = await build_and_publish(
        pool, dbt, event, reference, cleaned, steps, log_offset, "dbt build aside (warm runner, 1st snapshot)"
    )

    # --- the same lines as a second snapshot: what a warm runner pays on the next event ---
    second_id = hashlib.sha256(f"{snapshot_id}:second".encode()).hexdigest()
    second_event = event.model_copy(
        update={"snapshot_id": second_id, "run_id": uuid.uuid4().hex, "produced_at": datetime.now(UTC)}
    )
    second_cleaned = CleanResult(
        lines=cleaned.lines.with_columns(pl.lit(second_id).alias("snapshot_id")),
        dropped=cleaned.dropped,
        unmapped=cleaned.unmapped,
        unconvertible=cleaned.unconvertible,
    )
    again = Steps()
    second, log_offset = await build_and_publish(
        pool, dbt, second_event, reference, second_cleaned, again, log_offset, "dbt build aside"
    )

    cold_result = None
    if cold:
        cold_id = snapshots.new_build_id(second_id)
        try:
            cold_result = cold_build(pg_dsn, second_id, cold_id, workdir)
        finally:
            schemas = ", ".join(quoted(snapshots.build_schema(cold_id, layer)) for layer in reversed(snapshots.LAYERS))
            await pool.execute(f"drop schema if exists {schemas} cascade")
    transform_seconds = sum(
        seconds for name, seconds in steps.seconds.items() if not name.startswith(("ingestion", "  of which"))
    )
    return {
        "workbook": workbook.name,
        "snapshot_id": snapshot_id,
        "sheet_rows": {sheet.sheet.name: sheet.rows for sheet in sheets},
        "lines": cleaned.lines.height,
        "steps": steps.seconds,
        "transform_seconds": transform_seconds,
        "dbt_first": first,
        "dbt_second": second,
        "second_steps": again.seconds,
        "second_copy_load_seconds": again.seconds["COPY load + analyze (one transaction)"],
        "dbt_cold_process": cold_result,
        "gates": first["gates"],
        "mart_rows": first["mart_rows"],
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
        second_steps = ", ".join(
            f"{name.strip()} {seconds:.2f}"
            for name, seconds in size["second_steps"].items()
            if name != "dbt build aside"
        )
        print(f"  2nd snapshot, besides dbt (s): {second_steps}")
        for which in ("dbt_first", "dbt_second"):
            data = size[which]
            by_type = ", ".join(f"{kind} {sec:.1f}" for kind, sec in data.get("seconds_by_type", {}).items())
            stats = data["raw_stats_before"]
            print(
                f"  {which}: {data['seconds']:.1f} s ({by_type}); planner's rows for the snapshot"
                f" {stats['planner_rows_for_snapshot']:,} (actual {size['lines']:,}), reltuples {stats['reltuples']:,}"
            )
            print(
                f"    build {data['build_id']} -> {data['publication']}; breached gates {data['breached'] or 'none'};"
                f" dropped builds {len(data['dropped_builds'])}, pruned raw rows {data['pruned_rows']:,}"
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
    print(json.dumps(results, default=str))  # the last line: what bench/run.py collects
    return 0


if __name__ == "__main__":
    sys.exit(main())
