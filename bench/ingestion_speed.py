"""Ingestion speed: the ingestion stage's per-file work against a bare fastexcel read and pandas.

    uv run python bench/ingestion_speed.py [--rows 1000000] [--repeat 3] [--skip-pandas] [--profile]

A sample workbook of --rows hardware lines (2 years, seed 7, the project's generator; C2 sheets add
another 10 %) is written once and reused from --workdir. Then, in the same run, each measurement in a
fresh interpreter (so peak memory is its own, not mixed with the others):

- ingestion: `file_sha256` (the snapshot id) + `split_sheets` (every sheet to parquet), what the
  ingestion stage does per file;
- bare fastexcel: `fastexcel.read_excel(path)`, every sheet `.load_sheet(name).to_polars()`;
- pandas: `pandas.read_excel(path, sheet_name=None, engine="openpyxl")`, once (it is slow).

Seconds are the work only (interpreter start and imports are reported apart); ingestion and bare
fastexcel run --repeat times, interleaved, best taken. Peak memory is the child's own VmHWM. The
machine is shared, so the result is the ratios (ingestion / bare fastexcel <= 1.2, pandas / ingestion
>= 15), never absolute times. When ingestion misses its ratio (or with --profile), `split_sheets` is
taken apart step by step, with the alternatives for each step, to show where its time goes.
Results go to <workdir>/ingestion_speed.json.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MAPPING_DIR = REPO / "data" / "mapping_table"
DEFAULT_WORKDIR = REPO / "data" / "processed" / "bench"
INGESTION_OVER_BARE_GOAL = 1.2
PANDAS_OVER_INGESTION_GOAL = 15.0


# --------------------------------------------------------------------------- the workbook


def ensure_workbook(workdir: Path, rows: int, seed: int) -> tuple[Path, float | None]:
    """The cached sample workbook (written now if missing) and the seconds writing it took."""
    path = workdir / f"sellout-{rows}rows-seed{seed}.xlsx"
    if path.exists():
        return path, None
    workdir.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    print(f"writing {path} ({rows:,} hardware lines, a few minutes at 1M) ...", flush=True)
    started = time.perf_counter()
    # In a subprocess: this process stays small, and its children (the measurements) start small.
    command = [sys.executable, __file__, "--write", str(partial), "--rows", str(rows), "--seed", str(seed)]
    subprocess.run(command, check=True)
    partial.rename(path)  # only a complete file is ever reused
    return path, time.perf_counter() - started


def write_sample(path: Path, rows: int, seed: int) -> int:
    from syno_sample.workbook import SampleSpec, write_workbook

    write_workbook(path, SampleSpec(years=(2023, 2024), rows_per_year=rows // 2, seed=seed), MAPPING_DIR)
    return 0


# --------------------------------------------------------------------------- measurements (child side)


def _max_rss_mib() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child would inherit
    the high-water mark of the parent it was forked from."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure_ingestion(path: Path, out_dir: Path) -> dict[str, Any]:
    from syno_ingestion.workbook import split_sheets
    from syno_shared.fingerprint import file_sha256

    started = time.perf_counter()
    file_sha256(path)
    hashed = time.perf_counter()
    sheets = split_sheets(path, out_dir)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "sha256_seconds": hashed - started,
        "split_seconds": done - hashed,
        "rows": {sheet.sheet.name: sheet.rows for sheet in sheets},
        "cell_errors": sum(len(sheet.cell_errors) for sheet in sheets),
    }


def measure_fastexcel(path: Path, out_dir: Path) -> dict[str, Any]:
    import fastexcel

    started = time.perf_counter()
    reader = fastexcel.read_excel(path)
    rows = {name: reader.load_sheet(name).to_polars().height for name in reader.sheet_names}
    return {"seconds": time.perf_counter() - started, "rows": rows}


def measure_pandas(path: Path, out_dir: Path) -> dict[str, Any]:
    import pandas as pd

    started = time.perf_counter()
    frames = pd.read_excel(path, sheet_name=None, engine="openpyxl")
    return {"seconds": time.perf_counter() - started, "rows": {name: len(frame) for name, frame in frames.items()}}


def measure_profile(path: Path, out_dir: Path) -> dict[str, Any]:
    """`split_sheets` step by step (same calls, same order as workbook.py), then the alternatives."""
    import fastexcel
    import polars as pl

    from syno_ingestion.validation import HEADER_SEARCH_ROWS, check_header, contract_sheets, find_header_row
    from syno_shared.fingerprint import file_sha256

    steps: dict[str, float] = {}
    same_as_with_errors, errors_found = True, 0

    def timed(name: str, work: Any) -> Any:
        started = time.perf_counter()
        value = work()
        steps[name] = steps.get(name, 0.0) + time.perf_counter() - started
        return value

    timed("sha256", lambda: file_sha256(path))
    timed("import pyarrow (to_arrow_with_errors needs it)", lambda: importlib.import_module("pyarrow"))
    reader = timed("open (read_excel)", lambda: fastexcel.read_excel(path))
    rss: dict[str, float] = {"after open": _max_rss_mib()}
    for sheet in contract_sheets(reader.sheet_names):
        loaded = timed(
            "load_sheet(header_row=0, schema_sample_rows=None)",
            lambda s=sheet: reader.load_sheet(s.name, header_row=0, schema_sample_rows=None),
        )
        table, errors = timed("to_arrow_with_errors()", loaded.to_arrow_with_errors)
        frame = timed("pl.from_arrow", lambda t=table: pl.from_arrow(t))
        header_row = timed("find_header_row(columns)", lambda f=frame: find_header_row([f.columns]))
        if header_row is None:  # not the sample's layout; the real code would preview and load again
            raise RuntimeError(f"sheet {sheet.name}: header not on the first row; the profile assumes it is")
        timed(
            "write_parquet(zstd)",
            lambda f=frame, s=sheet: f.write_parquet(
                out_dir / f"{s.name}.parquet", compression="zstd", statistics=False
            ),
        )
        rss["peak during split"] = _max_rss_mib()
        errors_found += len(errors.errors) if errors is not None else 0
        del loaded, frame

        # Alternatives, per step (not part of the ingestion above; summed over sheets the same way).
        timed(
            "alt: header lower down: 30-row preview (a full parse)",
            lambda s=sheet: check_header(
                s.name, reader.load_sheet(s.name, header_row=None, n_rows=HEADER_SEARCH_ROWS).to_polars().rows()
            ),
        )
        timed(
            "alt: load_sheet(schema_sample_rows=1000, default)",
            lambda s=sheet: reader.load_sheet(s.name, header_row=0),
        )
        fast = timed(
            "alt: load_sheet(schema_sample_rows=None) + to_arrow()",
            lambda s=sheet: reader.load_sheet(s.name, header_row=0, schema_sample_rows=None).to_arrow(),
        )
        same_as_with_errors &= fast.equals(table)
        del fast, table
        frame = timed(
            "alt: load_sheet(schema_sample_rows=None) + to_polars()",
            lambda s=sheet: reader.load_sheet(s.name, header_row=0, schema_sample_rows=None).to_polars(),
        )
        for compression in ("lz4", "snappy", "uncompressed"):
            timed(
                f"alt: write_parquet({compression})",
                lambda f=frame, s=sheet, c=compression: f.write_parquet(
                    out_dir / f"{s.name}.{c}.parquet", compression=c, statistics=False
                ),
            )
        del frame
    return {
        "steps": steps,
        "rss_mib": rss,
        "to_arrow_equals_to_arrow_with_errors": same_as_with_errors,
        "cell_errors": errors_found,
        "seconds": 0.0,
        "rows": {},
    }


MEASURES = {
    "ingestion": measure_ingestion,
    "fastexcel": measure_fastexcel,
    "pandas": measure_pandas,
    "profile": measure_profile,
}


def child(kind: str, path: Path, out_dir: Path) -> int:
    """Run one measurement in this fresh interpreter and print its result as one JSON line."""
    rss_before = _max_rss_mib()
    result = MEASURES[kind](path, out_dir)
    result["peak_rss_mib"] = _max_rss_mib()
    result["start_rss_mib"] = rss_before
    print("RESULT " + json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- orchestration (parent side)


def run_child(kind: str, path: Path, workdir: Path, timeout: float | None) -> dict[str, Any]:
    """One measurement in a fresh subprocess; its own peak RSS is reported by the child itself."""
    out_dir = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir))
    command = [sys.executable, __file__, "--child", kind, "--path", str(path), "--out-dir", str(out_dir)]
    started = time.perf_counter()
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"timed_out": True, "seconds": time.perf_counter() - started}
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    wall = time.perf_counter() - started
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("RESULT "))
    result["process_wall_seconds"] = wall  # interpreter start + imports + work
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [run["seconds"] for run in runs]
    return {
        "best_seconds": min(seconds),
        "median_seconds": statistics.median(seconds),
        "runs_seconds": seconds,
        "peak_rss_mib": max(run["peak_rss_mib"] for run in runs),
        "start_rss_mib": max(run["start_rss_mib"] for run in runs),
        "process_wall_seconds": min(run["process_wall_seconds"] for run in runs),
        "rows": runs[0]["rows"],
        **{key: min(run[key] for run in runs) for key in ("sha256_seconds", "split_seconds") if key in runs[0]},
        **({"cell_errors": runs[0]["cell_errors"]} if "cell_errors" in runs[0] else {}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="cache for the workbook and results")
    parser.add_argument("--rows", type=int, default=1_000_000, help="hardware lines in all (2 years)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs of ingestion and of bare fastexcel")
    parser.add_argument("--skip-pandas", action="store_true")
    parser.add_argument("--pandas-timeout", type=float, default=900.0, help="seconds; past it, report a lower bound")
    parser.add_argument("--profile", action="store_true", help="profile split_sheets even if on target")
    parser.add_argument("--child", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        return write_sample(args.write, args.rows, args.seed)
    if args.child:
        return child(args.child, args.path, args.out_dir)

    workdir = args.workdir.resolve()
    path, write_seconds = ensure_workbook(workdir, args.rows, args.seed)
    size_mib = path.stat().st_size / 2**20
    print(f"workbook {path.name}: {size_mib:.1f} MiB, cpus={os.cpu_count()}", flush=True)

    runs: dict[str, list[dict[str, Any]]] = {"fastexcel": [], "ingestion": []}
    for attempt in range(args.repeat):
        for kind in ("fastexcel", "ingestion"):  # interleaved: load drifts hit both alike
            result = run_child(kind, path, workdir, timeout=None)
            runs[kind].append(result)
            print(f"  {kind:<10} run {attempt + 1}: {result['seconds']:7.2f} s", flush=True)
    summary = {kind: summarise(results) for kind, results in runs.items()}
    if summary["fastexcel"]["rows"] != summary["ingestion"]["rows"]:
        print(f"  note: rows differ: bare {summary['fastexcel']['rows']} vs ingestion {summary['ingestion']['rows']}")

    pandas_result: dict[str, Any] | None = None
    if not args.skip_pandas:
        print(f"  pandas (openpyxl), once, timeout {args.pandas_timeout:.0f} s ...", flush=True)
        pandas_result = run_child("pandas", path, workdir, timeout=args.pandas_timeout)
        pandas_result["lower_bound"] = bool(pandas_result.get("timed_out"))

    ingestion = summary["ingestion"]["best_seconds"]
    bare = summary["fastexcel"]["best_seconds"]
    ratio_bare = ingestion / bare
    ratio_pandas = pandas_result["seconds"] / ingestion if pandas_result else None

    profile: dict[str, Any] | None = None
    if args.profile or ratio_bare > INGESTION_OVER_BARE_GOAL:
        print("  profiling split_sheets ...", flush=True)
        profile = run_child("profile", path, workdir, timeout=None)

    # ------------------------------------------------------------------ report
    print()
    print(f"{'measurement':<36}{'best s':>9}{'median s':>10}{'peak RSS MiB':>14}")
    rows = [
        ("ingestion (sha256 + split_sheets)", summary["ingestion"]),
        ("  of which sha256", None),
        ("  of which split_sheets", None),
        ("bare fastexcel -> polars", summary["fastexcel"]),
    ]
    for label, data in rows:
        if data is not None:
            print(
                f"{label:<36}{data['best_seconds']:>9.2f}{data['median_seconds']:>10.2f}{data['peak_rss_mib']:>14.0f}"
            )
        else:
            key = "sha256_seconds" if "sha256" in label else "split_seconds"
            print(f"{label:<36}{summary['ingestion'][key]:>9.2f}")
    if pandas_result is not None:
        bound = ">= " if pandas_result["lower_bound"] else ""
        rss = pandas_result.get("peak_rss_mib")
        rss_text = f"{rss:>14.0f}" if rss is not None else f"{'n/a':>14}"
        print(
            f"{'pandas read_excel (openpyxl), 1 run':<36}"
            f"{bound + format(pandas_result['seconds'], '.2f'):>9}{'':>10}{rss_text}"
        )
    print(
        f"(RSS at child start, before imports: ingestion {summary['ingestion']['start_rss_mib']:.0f} MiB, "
        f"fastexcel {summary['fastexcel']['start_rss_mib']:.0f} MiB)"
    )
    print()
    verdict = "ok" if ratio_bare <= INGESTION_OVER_BARE_GOAL else "MISSED"
    print(f"ingestion / bare fastexcel = {ratio_bare:.2f}  (goal <= {INGESTION_OVER_BARE_GOAL}: {verdict})")
    if ratio_pandas is not None and pandas_result is not None:
        bound = ">= " if pandas_result["lower_bound"] else ""
        verdict = "ok" if ratio_pandas >= PANDAS_OVER_INGESTION_GOAL else "MISSED"
        print(
            f"pandas / ingestion         = {bound}{ratio_pandas:.1f}"
            f"  (goal >= {PANDAS_OVER_INGESTION_GOAL:.0f}: {verdict})"
        )
    if profile is not None:
        print("\nsplit_sheets step by step (all sheets, one run; 'alt:' rows are alternatives, not ingestion):")
        for step, seconds in profile["steps"].items():
            print(f"  {step:<56}{seconds:>8.2f} s")
        for label, mib in profile["rss_mib"].items():
            print(f"  RSS {label:<52}{mib:>8.0f} MiB")
        print(
            f"  to_arrow() == to_arrow_with_errors(): {profile['to_arrow_equals_to_arrow_with_errors']},"
            f" cell errors listed: {profile['cell_errors']}"
        )

    results = {
        "workbook": str(path),
        "workbook_mib": size_mib,
        "workbook_write_seconds": write_seconds,
        "hardware_lines": args.rows,
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "ingestion": summary["ingestion"],
        "bare_fastexcel": summary["fastexcel"],
        "pandas_openpyxl": pandas_result,
        "ratio_ingestion_over_bare": ratio_bare,
        "ratio_pandas_over_ingestion": ratio_pandas,
        "goals": {
            "ingestion_over_bare_max": INGESTION_OVER_BARE_GOAL,
            "pandas_over_ingestion_min": PANDAS_OVER_INGESTION_GOAL,
        },
        "profile": profile,
    }
    out = workdir / "ingestion_speed.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"\nresults: {out}")
    print(json.dumps(results))  # the last line: what bench/run.py collects
    return 0


if __name__ == "__main__":
    sys.exit(main())
