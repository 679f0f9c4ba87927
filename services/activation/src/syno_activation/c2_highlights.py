"""Synology C2 highlights: largest movers, attach rate among SVR-RM customers, new and lost C2 customers.

Inputs
------
``scorecard``: rows of ``marts.c2_adoption_scorecard`` (one per month, service family, C2 plan, region
and customer tier); only ``quarter`` (Date, first day), ``c2_service_family``, ``region`` and
``revenue_usd`` are read. Revenue adds up over months and the other dimensions.

``svr_rm_customers``: (quarter, region, customer) for every customer buying SVR-RM in a quarter.
``c2_customers``: (quarter, customer) for every customer with C2 sales in a quarter.

Quarters default to the latest quarter present; pass the latest *complete* quarter to keep a partial
quarter out of quarter-on-quarter comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

import polars as pl

from syno_activation.narratives import format_pct, format_usd
from syno_activation.segments import OVERALL
from syno_shared.quarters import previous_quarter, quarter_label

MoverDimension = Literal["c2_service_family", "region"]


@dataclass(frozen=True, slots=True)
class C2Highlights:
    """The headline C2 numbers for one quarter, and the same as plain sentences in `lines`."""

    quarter: date
    revenue_usd: float
    revenue_change: float | None
    attach_rate: float | None
    attach_rate_change_points: float | None
    svr_rm_customers: int
    svr_rm_with_c2: int
    active_customers: int
    new_customers: int
    returning_customers: int
    lost_customers: int
    lines: tuple[str, ...]


def _latest(frame: pl.LazyFrame) -> date | None:
    value = frame.select(pl.col("quarter").max()).collect().item()
    return value if isinstance(value, date) else None


def largest_movers(
    scorecard: pl.LazyFrame | pl.DataFrame,
    *,
    by: MoverDimension,
    quarter: date | None = None,
    top_n: int = 3,
) -> pl.DataFrame:
    """The `top_n` values of `by` whose C2 revenue moved most (absolute USD) against the previous quarter.

    Values whose revenue did not move are left out.
    Columns: `by` (the value), quarter, revenue_usd, previous_revenue_usd, change_usd, change_pct
    (a fraction; null when the previous quarter had no revenue). Ties by value name.
    """
    lazy = scorecard.lazy()
    quarter = quarter or _latest(lazy)
    if quarter is None:
        return pl.DataFrame(
            schema={
                by: pl.String,
                "quarter": pl.Date,
                "revenue_usd": pl.Float64,
                "previous_revenue_usd": pl.Float64,
                "change_usd": pl.Float64,
                "change_pct": pl.Float64,
            }
        )
    previous = previous_quarter(quarter)
    per_value = (
        lazy.filter(pl.col("quarter").is_in([quarter, previous]))
        .group_by(by)
        .agg(
            revenue_usd=pl.col("revenue_usd").filter(pl.col("quarter") == quarter).sum().cast(pl.Float64),
            previous_revenue_usd=pl.col("revenue_usd").filter(pl.col("quarter") == previous).sum().cast(pl.Float64),
        )
        .with_columns(
            quarter=pl.lit(quarter),
            change_usd=pl.col("revenue_usd") - pl.col("previous_revenue_usd"),
            change_pct=pl.when(pl.col("previous_revenue_usd") > 0).then(
                pl.col("revenue_usd") / pl.col("previous_revenue_usd") - 1.0
            ),
        )
    )
    return (
        per_value.filter(pl.col("change_usd") != 0)
        .sort([pl.col("change_usd").abs(), pl.col(by)], descending=[True, False])
        .head(top_n)
        .select(by, "quarter", "revenue_usd", "previous_revenue_usd", "change_usd", "change_pct")
        .collect()
    )


def attach_rate(
    svr_rm_customers: pl.LazyFrame | pl.DataFrame,
    c2_customers: pl.LazyFrame | pl.DataFrame,
) -> pl.DataFrame:
    """Share of SVR-RM customers that also have C2 in the same quarter, per quarter and region.

    Each quarter also gets a region 'overall' row. Columns: quarter, region, svr_rm_customers,
    with_c2, attach_rate (a fraction). Sorted by quarter, then region with 'overall' last.
    """
    c2 = c2_customers.lazy().select("quarter", "customer").unique().with_columns(has_c2=pl.lit(True))
    joined = (
        svr_rm_customers.lazy()
        .select("quarter", "region", "customer")
        .unique()
        .join(c2, on=["quarter", "customer"], how="left")
        .with_columns(pl.col("has_c2").fill_null(False))
    )
    counts = {
        "svr_rm_customers": pl.col("customer").n_unique(),
        "with_c2": pl.col("customer").filter(pl.col("has_c2")).n_unique(),
    }
    per_region = joined.group_by("quarter", "region").agg(**counts)
    overall = joined.group_by("quarter").agg(**counts).with_columns(region=pl.lit(OVERALL))
    return (
        pl.concat([per_region, overall.select(per_region.collect_schema().names())])
        .with_columns(
            attach_rate=pl.col("with_c2") / pl.col("svr_rm_customers"),
            _order=pl.col("region") == OVERALL,
        )
        .sort(["quarter", "_order", "region"])
        .drop("_order")
        .collect()
    )


def customer_changes(c2_customers: pl.LazyFrame | pl.DataFrame, quarter: date) -> pl.DataFrame:
    """Who changed C2 status in `quarter`: status 'new' (first C2 quarter ever), 'returning' (had C2
    before, not in the previous quarter) or 'lost' (C2 in the previous quarter, none now).

    Columns: customer, status; sorted by status then customer.
    """
    lazy = c2_customers.lazy().select("quarter", "customer").unique()
    previous = previous_quarter(quarter)
    per_customer = (
        lazy.filter(pl.col("quarter") <= quarter)
        .group_by("customer")
        .agg(
            now=(pl.col("quarter") == quarter).any(),
            before=(pl.col("quarter") == previous).any(),
            ever_before=(pl.col("quarter") < quarter).any(),
        )
    )
    status = (
        pl.when(pl.col("now") & ~pl.col("ever_before"))
        .then(pl.lit("new"))
        .when(pl.col("now") & ~pl.col("before"))
        .then(pl.lit("returning"))
        .when(~pl.col("now") & pl.col("before"))
        .then(pl.lit("lost"))
    )
    return per_customer.select("customer", status=status).drop_nulls("status").sort(["status", "customer"]).collect()


def _mover_phrase(movers: pl.DataFrame, by: str) -> str:
    parts = []
    for row in movers.iter_rows(named=True):
        change: float = row["change_usd"]
        amount = ("+" if change >= 0 else "") + format_usd(change)
        parts.append(f"{row[by]} {amount} ({format_pct(row['change_pct'])})")
    return ", ".join(parts) if parts else "none"


def summarize_c2(
    scorecard: pl.LazyFrame | pl.DataFrame,
    svr_rm_customers: pl.LazyFrame | pl.DataFrame,
    c2_customers: pl.LazyFrame | pl.DataFrame,
    *,
    quarter: date | None = None,
    top_n: int = 3,
) -> C2Highlights | None:
    """The C2 headline for `quarter` (default: latest in the scorecard), None without any C2 data.

    `lines` reads, for example::

        C2 revenue in Q3 2025: $120.0K (QoQ +20.0%).
        Largest movers by service family: Backup +$15.0K (+50.0%), Storage +$5.0K (+7.1%).
        Largest movers by region: FR +$12.0K (+40.0%), DE +$8.0K (+11.4%).
        C2 attach rate among SVR-RM customers: 40.0% (2 of 5), +15.0 pts QoQ.
        C2 customers: 10 active, 2 new, 1 returning, 1 lost.
    """
    lazy = scorecard.lazy()
    latest = _latest(lazy)
    if latest is None:
        return None
    quarter = quarter or latest
    previous = previous_quarter(quarter)
    totals = lazy.select(
        now=pl.col("revenue_usd").filter(pl.col("quarter") == quarter).sum().cast(pl.Float64),
        before=pl.col("revenue_usd").filter(pl.col("quarter") == previous).sum().cast(pl.Float64),
    ).collect()
    revenue, revenue_before = float(totals["now"].item()), float(totals["before"].item())
    revenue_change = revenue / revenue_before - 1.0 if revenue_before > 0 else None

    rates = attach_rate(svr_rm_customers, c2_customers).filter(pl.col("region") == OVERALL)
    now_rate = rates.filter(pl.col("quarter") == quarter)
    before_rate = rates.filter(pl.col("quarter") == previous)
    svr_rm = int(now_rate["svr_rm_customers"].item()) if now_rate.height else 0
    with_c2 = int(now_rate["with_c2"].item()) if now_rate.height else 0
    rate = float(now_rate["attach_rate"].item()) if now_rate.height else None
    rate_points = (
        round((rate - float(before_rate["attach_rate"].item())) * 100.0, 1)
        if rate is not None and before_rate.height
        else None
    )

    changes = customer_changes(c2_customers, quarter)["status"].value_counts()
    counted = dict(zip(changes["status"].to_list(), changes["count"].to_list(), strict=True))
    active = (
        c2_customers.lazy().filter(pl.col("quarter") == quarter).select(pl.col("customer").n_unique()).collect().item()
    )

    attach_line = (
        f"C2 attach rate among SVR-RM customers: {rate * 100.0:.1f}% ({with_c2} of {svr_rm})"
        + (f", {rate_points:+.1f} pts QoQ." if rate_points is not None else ".")
        if rate is not None
        else "C2 attach rate among SVR-RM customers: n/a (no SVR-RM customers)."
    )
    lines = (
        f"C2 revenue in {quarter_label(quarter)}: {format_usd(revenue)} (QoQ {format_pct(revenue_change)}).",
        "Largest movers by service family: "
        + _mover_phrase(largest_movers(lazy, by="c2_service_family", quarter=quarter, top_n=top_n), "c2_service_family")
        + ".",
        "Largest movers by region: "
        + _mover_phrase(largest_movers(lazy, by="region", quarter=quarter, top_n=top_n), "region")
        + ".",
        attach_line,
        f"C2 customers: {active} active, {counted.get('new', 0)} new, {counted.get('returning', 0)} returning, "
        f"{counted.get('lost', 0)} lost.",
    )
    return C2Highlights(
        quarter=quarter,
        revenue_usd=revenue,
        revenue_change=revenue_change,
        attach_rate=rate,
        attach_rate_change_points=rate_points,
        svr_rm_customers=svr_rm,
        svr_rm_with_c2=with_c2,
        active_customers=int(active),
        new_customers=int(counted.get("new", 0)),
        returning_customers=int(counted.get("returning", 0)),
        lost_customers=int(counted.get("lost", 0)),
        lines=lines,
    )
