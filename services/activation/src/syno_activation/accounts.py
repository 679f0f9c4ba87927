"""What activation knows about each account, per quarter and region (pure): the rows the levers pick from.

One row per row of marts.commercial_activation_snapshot (quarter, region, customer), with:

- ``revenue_usd`` this quarter, ``previous_revenue_usd`` (the quarter before), ``year_ago_revenue_usd`` (the
  same quarter a year earlier) and ``trailing_revenue_usd`` (the four quarters before this one), all in the
  region and 0 where the mart has no row;
- ``last_order_quarter``: the latest quarter up to this one in which the account had revenue in the region
  (null if none); ``last_order_date`` and ``country`` as the mart gives them (null until it carries them);
- ``buys``: what the account buys, in words: "SVR-RM T1, T2 + C2", "SVR-RM, no C2", "desktop servers, no C2",
  "C2 only", "other products" (SVR-RM tiers bought, net quantity > 0, in this quarter or the three before);
- ``svr_rm_revenue_usd``: the account's SVR-RM revenue this quarter (all regions: the SVR-RM mart has none);
- ``svr_rm_forecast_usd``, ``svr_rm_forecast_lower_80``, ``svr_rm_forecast_upper_80``: the account's own SVR-RM
  revenue forecast for the next quarter, where the forecast stage made one (its top customers);
- ``is_main_region``: the region where the account spent most this quarter (ties: by region name), the one
  place its own forecast counts.

`accounts_json` turns a lever's accounts into the JSON list stored on a storyline.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from syno_activation.segments import SEGMENT_C2_ONLY, SEGMENT_DESKTOP, SEGMENT_SVR_RM

_KEYS: Final = ["quarter", "region", "customer"]

# The fields of one account in a storyline's `accounts` JSON, in this order.
ACCOUNT_FIELDS: Final = (
    "customer",
    "country",
    "last_order_quarter",
    "last_order_date",
    "revenue_usd",
    "previous_revenue_usd",
    "year_ago_revenue_usd",
    "usd_at_stake",
    "buys",
    "svr_rm_revenue_usd",
    "svr_rm_forecast_usd",
)
_AMOUNTS: Final = (
    "revenue_usd",
    "previous_revenue_usd",
    "year_ago_revenue_usd",
    "usd_at_stake",
    "svr_rm_revenue_usd",
    "svr_rm_forecast_usd",
)


def _shifted(snapshot: pl.LazyFrame, quarters: int, name: str) -> pl.LazyFrame:
    """Each row's revenue keyed on the quarter `quarters` later, so a join reads 'revenue `quarters` ago'."""
    return snapshot.select(
        pl.col("quarter").dt.offset_by(f"{quarters}q"), "region", "customer", pl.col("revenue_usd").alias(name)
    )


def _recent_tiers(svr_rm_revenue: pl.LazyFrame) -> pl.LazyFrame:
    """(quarter, customer, tiers): the SVR-RM tiers bought in the quarter or the three before, sorted."""
    bought = svr_rm_revenue.filter(pl.col("quantity") > 0)
    windows = pl.concat(
        [bought.select(pl.col("quarter").dt.offset_by(f"{ahead}q"), "customer", "tier") for ahead in range(4)]
    )
    return windows.group_by("quarter", "customer").agg(tiers=pl.col("tier").unique().sort().str.join(", "))


def _buys() -> pl.Expr:
    base = (
        pl.when(pl.col("segment") == SEGMENT_SVR_RM)
        .then(pl.concat_str([pl.lit("SVR-RM"), pl.col("tiers")], separator=" ", ignore_nulls=True))
        .when(pl.col("segment") == SEGMENT_DESKTOP)
        .then(pl.lit("desktop servers"))
        .when(pl.col("segment") == SEGMENT_C2_ONLY)
        .then(pl.lit("C2 only"))
        .otherwise(pl.lit("other products"))
    )
    c2 = (
        pl.when(pl.col("segment") == SEGMENT_C2_ONLY)
        .then(pl.lit(""))
        .when(pl.col("has_c2"))
        .then(pl.lit(" + C2"))
        .when(pl.col("segment").is_in([SEGMENT_SVR_RM, SEGMENT_DESKTOP]))
        .then(pl.lit(", no C2"))
        .otherwise(pl.lit(""))
    )
    return base + c2


def _own_forecasts(customer_forecasts: pl.LazyFrame) -> pl.LazyFrame:
    """Each customer's SVR-RM forecast keyed on the quarter before its target."""
    return customer_forecasts.group_by(
        quarter=pl.col("target_quarter").dt.offset_by("-1q"), customer=pl.col("customer")
    ).agg(
        svr_rm_forecast_usd=pl.col("forecast_revenue").sum(),
        svr_rm_forecast_lower_80=_sum_of_known("lower_80"),
        svr_rm_forecast_upper_80=_sum_of_known("upper_80"),
    )


def _sum_of_known(name: str) -> pl.Expr:
    """The sum, or null when any value is unknown (a bound missing on one series is missing on the total)."""
    return pl.when(pl.col(name).is_null().any()).then(None).otherwise(pl.col(name).sum())


def account_facts(
    snapshot: pl.LazyFrame | pl.DataFrame,
    svr_rm_revenue: pl.LazyFrame | pl.DataFrame,
    customer_forecasts: pl.LazyFrame | pl.DataFrame,
) -> pl.LazyFrame:
    """One row per quarter, region and customer of `snapshot` with the facts above."""
    rows = snapshot.lazy().with_columns(pl.col("revenue_usd").cast(pl.Float64))
    revenue = rows.select(*_KEYS, "revenue_usd")
    trailing = (
        pl.concat([_shifted(revenue, ago, "trailing_revenue_usd") for ago in range(1, 5)])
        .group_by(_KEYS)
        .agg(pl.col("trailing_revenue_usd").sum())
    )
    svr_rm = svr_rm_revenue.lazy()
    svr_rm_now = svr_rm.group_by("quarter", "customer").agg(svr_rm_revenue_usd=pl.col("revenue_usd").sum())
    by_revenue = pl.col("region").sort_by(["revenue_usd", "region"], descending=[True, False])
    spent_most = by_revenue.first().over("quarter", "customer")
    return (
        rows.join(_shifted(revenue, 1, "previous_revenue_usd"), on=_KEYS, how="left")
        .join(_shifted(revenue, 4, "year_ago_revenue_usd"), on=_KEYS, how="left")
        .join(trailing, on=_KEYS, how="left")
        .join(_recent_tiers(svr_rm), on=["quarter", "customer"], how="left")
        .join(svr_rm_now, on=["quarter", "customer"], how="left")
        .join(_own_forecasts(customer_forecasts.lazy()), on=["quarter", "customer"], how="left")
        .with_columns(
            pl.col("previous_revenue_usd", "year_ago_revenue_usd", "trailing_revenue_usd", "svr_rm_revenue_usd")
            .fill_null(0.0)
            .cast(pl.Float64),
            last_order_quarter=pl.when(pl.col("revenue_usd") > 0)
            .then(pl.col("quarter"))
            .forward_fill()
            .over("region", "customer", order_by="quarter"),
            buys=_buys(),
            is_main_region=pl.col("region") == spent_most,
        )
        .drop("tiers")
    )


def accounts_json() -> pl.Expr:
    """In an aggregation over a storyline's accounts: the accounts as a JSON list, most money at stake first
    (then revenue, then name); amounts rounded to cents, quarters and dates as ISO dates."""
    account = pl.struct(
        *[pl.col(name).round(2) if name in _AMOUNTS else pl.col(name) for name in ACCOUNT_FIELDS]
    ).struct.json_encode()
    ordered = account.sort_by(["usd_at_stake", "revenue_usd", "customer"], descending=[True, True, False])
    return pl.format("[{}]", ordered.str.join(","))
