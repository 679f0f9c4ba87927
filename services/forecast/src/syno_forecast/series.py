"""Quarterly training series built from a long polars frame.

A series runs from its first observed quarter to the latest complete quarter, with an explicit zero for
every quarter that has no rows (a customer that bought nothing in a quarter sold zero, it is not missing).
The current, partial quarter is never trained on: its value so far is kept apart as ``actual_to_date``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from syno_shared.quarters import add_quarters, quarter_start

SERIES_COLUMNS: tuple[str, ...] = ("series_id", "quarter", "value")


class SeriesFrameError(ValueError):
    """The long frame cannot be turned into quarterly series (bad columns or quarters)."""


@dataclass(frozen=True, slots=True)
class QuarterlySeries:
    """One series of complete quarters, oldest first, with gaps filled by explicit zeros.

    ``values`` is empty when the series has rows only in the partial quarter.
    """

    series_id: str
    start: date | None
    values: tuple[float, ...]
    actual_to_date: float | None
    filled_quarters: int

    @property
    def quarters(self) -> tuple[date, ...]:
        """First day of each complete quarter in ``values``."""
        if self.start is None:
            return ()
        return tuple(add_quarters(self.start, step) for step in range(len(self.values)))


def build_quarterly_series(frame: pl.DataFrame, *, last_complete_quarter: date) -> list[QuarterlySeries]:
    """Build one zero-filled quarterly series per ``series_id``, sorted by id.

    ``frame`` is long: ``series_id`` (string), ``quarter`` (Date, any day in the quarter; normalised to its
    first day), ``value`` (numeric; several rows for one quarter are summed, nulls count as zero, NaN and
    infinities are rejected).
    Quarters after ``last_complete_quarter``: the one right after it is the partial current quarter and is
    returned as ``actual_to_date``; anything later is rejected, since it cannot be a real observation.
    """
    missing = [name for name in SERIES_COLUMNS if name not in frame.columns]
    if missing:
        raise SeriesFrameError(f"series frame lacks columns {missing}; expected {list(SERIES_COLUMNS)}")
    if frame.schema["quarter"] != pl.Date:
        raise SeriesFrameError(f"column 'quarter' must be Date, got {frame.schema['quarter']}")
    last = quarter_start(last_complete_quarter)
    current = add_quarters(last, 1)

    per_quarter = (
        frame.lazy()
        .select(
            pl.col("series_id").cast(pl.String),
            pl.col("quarter").dt.truncate("1q"),
            pl.col("value").cast(pl.Float64),
        )
        .group_by("series_id", "quarter")
        .agg(pl.col("value").sum())
        .collect()
    )
    if per_quarter["series_id"].null_count():
        raise SeriesFrameError("series frame has rows without a series_id")
    not_finite = per_quarter.filter(~pl.col("value").is_finite())
    if not_finite.height:
        first = not_finite.row(0, named=True)
        raise SeriesFrameError(
            f"{not_finite.height} quarter(s) with a NaN or infinite value, e.g. series {first['series_id']!r}"
        )
    too_late = per_quarter.filter(pl.col("quarter") > current)
    if too_late.height:
        first = too_late.sort("quarter").row(0, named=True)
        raise SeriesFrameError(
            f"{too_late.height} row(s) dated after the current quarter {current}, "
            f"e.g. series {first['series_id']!r} in {first['quarter']}"
        )

    complete = per_quarter.filter(pl.col("quarter") <= last)
    grid = (
        complete.lazy()
        .group_by("series_id")
        .agg(pl.col("quarter").min().alias("start"))
        .with_columns(pl.date_ranges("start", pl.lit(last), interval="1q").alias("quarter"))
        .explode("quarter")
        .join(complete.lazy(), on=["series_id", "quarter"], how="left")
        .with_columns(
            pl.col("value").is_null().alias("is_filled"),
            pl.col("value").fill_null(0.0),
        )
        .sort("series_id", "quarter")
        .group_by("series_id", maintain_order=True)
        .agg(
            pl.col("start").first(),
            pl.col("value"),
            pl.col("is_filled").sum().alias("filled_quarters"),
        )
    )
    partial = per_quarter.lazy().filter(pl.col("quarter") == current).select("series_id", "value")
    ids = per_quarter.lazy().select("series_id").unique()
    table = (
        ids.join(grid, on="series_id", how="left")
        .join(partial.rename({"value": "actual_to_date"}), on="series_id", how="left")
        .sort("series_id")
        .collect()
    )
    return [
        QuarterlySeries(
            series_id=row["series_id"],
            start=row["start"],
            values=tuple(row["value"] or ()),
            actual_to_date=row["actual_to_date"],
            filled_quarters=int(row["filled_quarters"] or 0),
        )
        for row in table.iter_rows(named=True)
    ]
