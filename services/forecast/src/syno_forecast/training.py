"""The training set's pure half: long (series_id, quarter, value) frames from mart frames.

Series ids read `<cohort>|<key>|<metric>`: cohort 'overall' (key = SVR-RM tier or TOTAL),
'customer' (key = customer, all SVR-RM tiers together), 'c2' (key = service family) and
'region' (key = sales region, all sell-out revenue).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import polars as pl

from syno_shared.quarters import add_quarters

METRICS = ("quantity", "revenue_usd")
C2_METRICS = ("active_customers", "revenue_usd")
SEPARATOR = "|"


def _long_series(frame: pl.LazyFrame, cohort: str, key: pl.Expr, metrics: tuple[str, ...]) -> pl.LazyFrame:
    return (
        frame.select(pl.col("quarter"), key.alias("key"), *[pl.col(metric).cast(pl.Float64) for metric in metrics])
        .unpivot(index=["quarter", "key"], on=list(metrics), variable_name="metric", value_name="value")
        .group_by("quarter", "key", "metric")
        .agg(pl.col("value").sum())
        .select(
            pl.concat_str(pl.lit(cohort), "key", "metric", separator=SEPARATOR).alias("series_id"),
            "quarter",
            "value",
        )
    )


def tier_series(svr_rm_quarterly: pl.DataFrame) -> pl.DataFrame:
    """Quantity and USD revenue per SVR-RM tier, plus the total over all tiers."""
    frame = svr_rm_quarterly.lazy()
    tiers = _long_series(frame, "overall", pl.col("tier"), METRICS)
    total = _long_series(frame, "overall", pl.lit("TOTAL"), METRICS)
    return pl.concat([tiers, total]).sort("series_id", "quarter").collect()


def top_customers(customer_quarterly: pl.DataFrame, *, last_complete_quarter: date, top_n: int) -> list[str]:
    """Customers ranked by SVR-RM revenue over the four complete quarters ending at last_complete_quarter."""
    first = add_quarters(last_complete_quarter, -4)
    return (
        customer_quarterly.lazy()
        .filter((pl.col("quarter") > first) & (pl.col("quarter") <= last_complete_quarter))
        .group_by("customer")
        .agg(pl.col("revenue_usd").sum())
        .sort(["revenue_usd", "customer"], descending=[True, False])
        .head(top_n)
        .collect()
        .get_column("customer")
        .to_list()
    )


def customer_series(customer_quarterly: pl.DataFrame, customers: list[str]) -> pl.DataFrame:
    frame = customer_quarterly.lazy().filter(pl.col("customer").is_in(customers))
    return _long_series(frame, "customer", pl.col("customer"), METRICS).sort("series_id", "quarter").collect()


def c2_series(c2_scorecard: pl.DataFrame) -> pl.DataFrame:
    """C2 per service family: revenue summed over the quarter; active customers = the quarter's busiest month."""
    monthly = (
        c2_scorecard.lazy()
        .group_by("quarter", "month", "c2_service_family")
        .agg(pl.col("active_customers").sum(), pl.col("revenue_usd").sum())
    )
    quarterly = monthly.group_by("quarter", "c2_service_family").agg(
        pl.col("active_customers").max(), pl.col("revenue_usd").sum()
    )
    return _long_series(quarterly, "c2", pl.col("c2_service_family"), C2_METRICS).sort("series_id", "quarter").collect()


def region_series(sellout_region_quarterly: pl.DataFrame) -> pl.DataFrame:
    """All sell-out revenue per sales region: the forecast the activation storylines compare against."""
    return (
        _long_series(sellout_region_quarterly.lazy(), "region", pl.col("region"), ("revenue_usd",))
        .sort("series_id", "quarter")
        .collect()
    )


def training_set(marts: Mapping[str, pl.DataFrame], last_complete_quarter: date, top_n: int) -> pl.DataFrame:
    """Every series the run forecasts, from the mart frames ``warehouse.fetch_marts`` reads."""
    parts = []
    if marts["svr_rm_quarterly"].height:
        parts.append(tier_series(marts["svr_rm_quarterly"]))
    customers_frame = marts["svr_rm_customer_quarterly"]
    if customers_frame.height:
        customers = top_customers(customers_frame, last_complete_quarter=last_complete_quarter, top_n=top_n)
        parts.append(customer_series(customers_frame, customers))
    if marts["c2_adoption_scorecard"].height:
        parts.append(c2_series(marts["c2_adoption_scorecard"]))
    if marts["sellout_region_quarterly"].height:
        parts.append(region_series(marts["sellout_region_quarterly"]))
    return (
        pl.concat(parts)
        if parts
        else pl.DataFrame(schema={"series_id": pl.String, "quarter": pl.Date, "value": pl.Float64})
    )
