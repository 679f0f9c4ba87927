"""Speed benchmark: 1,000 customer-like series x 2 metrics through the whole engine (backtest + refit +
intervals), horizon 1, the service's model set. Goal: <= 60 s on 2 cores with one replica.

    uv run python bench/forecast_speed.py [--customers 1000] [--workers 2] [--start-method forkserver]

The engine runs exactly as in one forecast replica: the series are cut into the service's work batches
(``make_batches``, SYNO_FORECAST__BATCH_SERIES per batch) and each batch goes through the replica's
``BatchRunner`` and its process pool; only the work queue and the database around them are left out.

Series are synthetic and seeded: 8-12 complete quarters (each customer starts in a random quarter), a
level, a trend and a seasonal shape per customer, noise, revenue = quantity x a drifting price; about a
fifth of the customers buy irregularly (intermittent), a few stop buying (all zero), and most have rows in
the partial current quarter. Timed: starting the worker pool (once per replica in the service) and the
forecast call itself; the interpreter's imports (~6 s for darts + statsforecast) are reported apart.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

IMPORT_STARTED = time.perf_counter()

from collections import Counter  # noqa: E402 - timed on purpose
from datetime import date  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from syno_forecast.backtest import SeriesForecast  # noqa: E402
from syno_forecast.runner import BatchRunner  # noqa: E402
from syno_forecast.series import build_quarterly_series  # noqa: E402
from syno_forecast.settings import ForecastOptions  # noqa: E402
from syno_forecast.workqueue import make_batches  # noqa: E402
from syno_shared.quarters import add_quarters  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - IMPORT_STARTED
LAST_COMPLETE = date(2025, 4, 1)
GOAL_SECONDS = 60.0


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


async def forecast(
    frame: pl.DataFrame, *, workers: int, start_method: str, models: list[str] | None, batch_series: int
) -> tuple[list[SeriesForecast], float, float]:
    """The replica's path: start (and warm) its runner, then series -> batches -> runner. Returns the forecasts,
    the pool start and the forecast seconds."""
    started = time.perf_counter()
    runner = BatchRunner(workers, name="bench", start_method=start_method)
    try:
        await runner.warm_up()  # start the workers (and their imports) now
        pool_seconds = time.perf_counter() - started
        call_started = time.perf_counter()
        series = build_quarterly_series(frame, last_complete_quarter=LAST_COMPLETE)
        batches = make_batches(
            series,
            forecast_run_id="bench",
            run_id="bench",
            snapshot_id="bench",
            last_complete_quarter=LAST_COMPLETE,
            batch_series=batch_series,
            models=models,
        )
        parts = await asyncio.gather(*(runner.evaluate(batch) for batch in batches))
        call_seconds = time.perf_counter() - call_started
    finally:
        await runner.stop()
    return [result for part in parts for result in part], pool_seconds, call_seconds


def main(argv: list[str] | None = None) -> int:
    defaults = ForecastOptions()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=defaults.processes, help="pool processes of the replica")
    parser.add_argument("--start-method", default="forkserver", choices=["fork", "forkserver", "spawn"])
    parser.add_argument("--models", default=None, help="comma-separated model names (default: the service's)")
    parser.add_argument("--batch-series", type=int, default=defaults.batch_series, help="series per work batch")
    args = parser.parse_args(argv)

    frame = customer_frame(args.customers)
    models = args.models.split(",") if args.models else None
    started = time.perf_counter()
    results, pool_seconds, call_seconds = asyncio.run(
        forecast(
            frame,
            workers=args.workers,
            start_method=args.start_method,
            models=models,
            batch_series=args.batch_series,
        )
    )
    total = time.perf_counter() - started
    chosen = Counter(result.model for result in results)
    lengths = Counter(result.history_quarters for result in results)
    print(f"{len(results)} series ({args.customers} customers x 2 metrics), {frame.height} input rows")
    print(f"  history lengths: {dict(sorted(lengths.items()))}")
    print("  chosen: " + ", ".join(f"{name} {count}" for name, count in chosen.most_common()))
    print(f"  imports {IMPORT_SECONDS:.1f} s (once per process start)")
    print(f"  pool start ({args.start_method}, {args.workers} workers) {pool_seconds:.1f} s (once per replica)")
    print(
        f"  forecast {call_seconds:.1f} s in batches of {args.batch_series}"
        f"  ({1000 * call_seconds / max(len(results), 1):.1f} ms/series)"
    )
    print(
        f"  pool start + forecast {total:.1f} s; with imports {total + IMPORT_SECONDS:.1f} s"
        f" (goal <= {GOAL_SECONDS:.0f} s)"
    )
    print("  goal met" if total + IMPORT_SECONDS <= GOAL_SECONDS else "  goal NOT met (see the lines above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
