"""The five levers a salesperson pulls, and the USD at stake on each account (pure).

Every amount is per quarter, so levers compare. An account (a row of `accounts.account_facts`: quarter, region,
customer) can be behind several levers. t_decline, t_growth and t_forecast are `StorylineRules`.

- ``win_back``: declining accounts: not dormant, revenue the quarter before > 0 and revenue now at most
  (1 - t_decline) times it. At stake: the revenue lost, previous - now.
- ``re_engage``: dormant accounts (the mart's signal: no revenue now, revenue the same quarter a year earlier).
  At stake: a quarter's worth of their trailing revenue, (revenue over the four quarters before) / 4.
- ``cross_sell_c2``: SVR-RM buyers without C2 (`segments.is_svr_rm_without_c2`). At stake: the observed attach
  price among comparable customers (`c2_attach_prices`: the C2 revenue per SVR-RM buyer with C2 revenue that
  quarter, in the region, else in all regions); without such buyers, the revenue per active customer of the
  region's C2 offer (`c2_offers`; the overall one when the region sold no C2 that quarter); 0 when no C2 was
  sold anywhere. The offer (which plan) is `c2_offers`' in every case.
- ``upsell_rackmount``: growing desktop buyers: segment 'Desktop only', revenue the quarter before > 0 and
  revenue now at least (1 + t_growth) times it. At stake: what a typical entry rackmount buyer spends
  (`entry_rackmount_prices`: the median T1 revenue per T1 buyer that quarter); 0 when no T1 was sold.
- ``protect_pipeline``: accounts whose next quarter is forecast to fall beyond the 80% interval (only the
  quarter before a forecast's target has one). An account with its own SVR-RM forecast is judged on it, in
  its main region only: its interval's upper bound below its SVR-RM revenue now (without an interval: the
  point at least t_forecast below); at stake: SVR-RM revenue now - forecast point. Any other account with
  revenue is judged on its region's forecast, the same test against the region's revenue now; at stake: its
  revenue times the region's expected fall, revenue * (1 - point / region revenue).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

from syno_activation.segments import (
    ENTRY_RACKMOUNT_TIER,
    OVERALL,
    SEGMENT_DESKTOP,
    SEGMENT_SVR_RM,
    SIGNAL_DORMANT,
    is_svr_rm_without_c2,
)

LEVER_WIN_BACK: Final = "win_back"
LEVER_RE_ENGAGE: Final = "re_engage"
LEVER_PROTECT: Final = "protect_pipeline"
LEVER_CROSS_SELL_C2: Final = "cross_sell_c2"
LEVER_UPSELL_RACKMOUNT: Final = "upsell_rackmount"
# Ties in the ranking: money already lost before money forecast, forecast before potential.
LEVERS: Final = (LEVER_WIN_BACK, LEVER_RE_ENGAGE, LEVER_PROTECT, LEVER_CROSS_SELL_C2, LEVER_UPSELL_RACKMOUNT)
OBSERVED_LEVERS: Final = (LEVER_WIN_BACK, LEVER_RE_ENGAGE)  # money that was there and is gone

# What a cross-sell's C2 price rests on, best first: SVR-RM buyers with C2 in the region, in all regions, the offer.
PRICE_REGION_BUYERS: Final = "region_buyers"
PRICE_OVERALL_BUYERS: Final = "overall_buyers"
PRICE_OFFER: Final = "offer"


@dataclass(frozen=True, slots=True)
class StorylineRules:
    """The thresholds of the levers and of materiality (settings: SYNO_ACTIVATION__...)."""

    min_customers: int = 3  # a cell with fewer customers is anecdotal
    min_revenue_usd: float = 10_000.0  # a cell with less revenue (this quarter and the one before) is anecdotal
    decline_threshold: float = 0.20  # an account losing this share of its revenue quarter on quarter declines
    growth_threshold: float = 0.20  # a desktop buyer gaining this share quarter on quarter grows
    forecast_decline: float = 0.10  # without an interval, a forecast this far below now is a decline
    top_opportunities: int = 5  # opportunities the run summary lists


def c2_offers(scorecard: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """The C2 plan to offer per quarter and region (and 'overall'), with its observed attach price.

    The offer is the service family and plan with the most active customers in the quarter (a month's
    active customers summed over customer tiers; the quarter's = its busiest month, as the forecast counts
    them), ties by revenue then name; its price is the plan's quarter revenue / those active customers.
    Columns: quarter, region, c2_offer ("BACKUP BUSINESS"), c2_price.
    """
    lazy = scorecard.lazy().with_columns(pl.col("revenue_usd").cast(pl.Float64))
    plan = ["quarter", "region", "c2_service_family", "c2_plan"]
    per_region = lazy.select(*plan, "month", "active_customers", "revenue_usd")
    overall = per_region.with_columns(region=pl.lit(OVERALL))
    monthly = (
        pl.concat([per_region, overall])
        .group_by(*plan, "month")
        .agg(pl.col("active_customers").sum(), pl.col("revenue_usd").sum())
    )
    plans = (
        monthly.group_by(plan)
        .agg(active=pl.col("active_customers").max(), revenue=pl.col("revenue_usd").sum())
        .filter(pl.col("active") > 0)
        .with_columns(c2_offer=pl.concat_str(["c2_service_family", "c2_plan"], separator=" ", ignore_nulls=True))
    )
    return (
        plans.sort(["active", "revenue", "c2_offer"], descending=[True, True, False])
        .group_by("quarter", "region", maintain_order=True)
        .first()
        .select("quarter", "region", "c2_offer", c2_price=pl.col("revenue") / pl.col("active"))
    )


def c2_attach_prices(facts: pl.LazyFrame) -> pl.LazyFrame:
    """Per quarter and region (and 'overall'): the observed C2 attach price among comparable customers, the mean
    C2 revenue (`c2_revenue_usd` of marts.commercial_activation_snapshot) of the SVR-RM buyers with C2 revenue that
    quarter (a customer buying in two regions counts in each). Columns: quarter, region, attach_price."""
    buyers = (
        facts.filter((pl.col("segment") == SEGMENT_SVR_RM) & (pl.col("c2_revenue_usd") > 0))
        .select("quarter", "region", "customer", pl.col("c2_revenue_usd").cast(pl.Float64))
        .sort("quarter", "region", "customer")  # one order, the same floats on every run
    )
    price = pl.col("c2_revenue_usd").sum() / pl.len()
    per_region = buyers.group_by("quarter", "region", maintain_order=True).agg(attach_price=price)
    overall = buyers.group_by("quarter", maintain_order=True).agg(attach_price=price)
    return pl.concat([per_region, overall.select("quarter", region=pl.lit(OVERALL), attach_price="attach_price")])


def entry_rackmount_prices(svr_rm_revenue: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Per quarter, what a typical entry rackmount buyer spends: the median of the T1 revenue of each customer
    buying T1 (net quantity > 0) that quarter; a median, so a few distributors do not set it.
    Columns: quarter, entry_price."""
    per_buyer = (
        svr_rm_revenue.lazy()
        .filter(pl.col("tier") == ENTRY_RACKMOUNT_TIER)
        .group_by("quarter", "customer")
        .agg(pl.col("quantity").sum(), pl.col("revenue_usd").cast(pl.Float64).sum())
        .filter(pl.col("quantity") > 0)
    )
    return per_buyer.group_by("quarter").agg(entry_price=pl.col("revenue_usd").median())


def region_forecasts(forecasts: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Region forecasts keyed on the quarter before their target: quarter, region, region_forecast,
    region_lower_80, region_upper_80 ('overall' left out: it says nothing about one region)."""
    return (
        forecasts.lazy()
        .filter(pl.col("region") != OVERALL)
        .select(
            quarter=pl.col("target_quarter").dt.offset_by("-1q"),
            region=pl.col("region"),
            region_forecast=pl.col("forecast_revenue").cast(pl.Float64),
            region_lower_80=pl.col("lower_80").cast(pl.Float64),
            region_upper_80=pl.col("upper_80").cast(pl.Float64),
        )
    )


def _falls_beyond_interval(now: pl.Expr, point: pl.Expr, upper: pl.Expr, rules: StorylineRules) -> pl.Expr:
    beyond = pl.when(upper.is_not_null()).then(upper < now).otherwise(point <= now * (1.0 - rules.forecast_decline))
    return point.is_not_null() & (now > 0) & beyond.fill_null(False)


def lever_accounts(
    facts: pl.LazyFrame,
    *,
    offers: pl.LazyFrame,
    entry_prices: pl.LazyFrame,
    forecasts: pl.LazyFrame,
    rules: StorylineRules,
) -> pl.LazyFrame:
    """The accounts behind each lever: the rows of `facts` picked by a lever, with columns `lever`,
    `usd_at_stake` and what the storyline's words need (c2_offer, c2_price, is_offer_overall, entry_price,
    region_revenue, region_forecast, is_own_forecast, is_interval_forecast: the forecast judged had an interval)."""
    attach = c2_attach_prices(facts)
    region_attach = attach.filter(pl.col("region") != OVERALL).select(
        "quarter", "region", region_attach_price="attach_price"
    )
    overall_attach = attach.filter(pl.col("region") == OVERALL).select("quarter", overall_attach_price="attach_price")
    region_offers = offers.filter(pl.col("region") != OVERALL)
    overall_offers = offers.filter(pl.col("region") == OVERALL).select(
        "quarter", overall_offer="c2_offer", overall_price="c2_price"
    )
    region_revenue = facts.group_by("quarter", "region").agg(region_revenue=pl.col("revenue_usd").sum())
    enriched = (
        facts.join(region_offers, on=["quarter", "region"], how="left")
        .join(overall_offers, on="quarter", how="left")
        .join(region_attach, on=["quarter", "region"], how="left")
        .join(overall_attach, on="quarter", how="left")
        .join(entry_prices, on="quarter", how="left")
        .join(region_revenue, on=["quarter", "region"], how="left")
        .join(forecasts, on=["quarter", "region"], how="left")
        .with_columns(
            is_offer_overall=pl.col("c2_offer").is_null() & pl.col("overall_offer").is_not_null(),
            c2_offer=pl.coalesce("c2_offer", "overall_offer"),
            c2_price=pl.coalesce("region_attach_price", "overall_attach_price", "c2_price", "overall_price"),
            c2_price_basis=pl.when(pl.col("region_attach_price").is_not_null())
            .then(pl.lit(PRICE_REGION_BUYERS))
            .when(pl.col("overall_attach_price").is_not_null())
            .then(pl.lit(PRICE_OVERALL_BUYERS))
            .when(pl.col("c2_price").is_not_null() | pl.col("overall_price").is_not_null())
            .then(pl.lit(PRICE_OFFER)),
            is_own_forecast=pl.col("svr_rm_forecast_usd").is_not_null(),
        )
        .with_columns(
            is_interval_forecast=pl.when(pl.col("is_own_forecast"))
            .then(pl.col("svr_rm_forecast_upper_80").is_not_null())
            .otherwise(pl.col("region_upper_80").is_not_null())
        )
        .drop("overall_offer", "overall_price", "region_attach_price", "overall_attach_price")
    )
    previous, now = pl.col("previous_revenue_usd"), pl.col("revenue_usd")
    is_dormant = pl.col("signal") == SIGNAL_DORMANT
    own_falls = (
        pl.col("is_own_forecast")
        & pl.col("is_main_region")
        & _falls_beyond_interval(
            pl.col("svr_rm_revenue_usd"),
            pl.col("svr_rm_forecast_usd"),
            pl.col("svr_rm_forecast_upper_80"),
            rules,
        )
    )
    region_falls = (
        ~pl.col("is_own_forecast")
        & (now > 0)
        & _falls_beyond_interval(pl.col("region_revenue"), pl.col("region_forecast"), pl.col("region_upper_80"), rules)
    )
    picks: list[tuple[str, pl.Expr, pl.Expr]] = [
        (LEVER_WIN_BACK, ~is_dormant & (previous > 0) & (now <= previous * (1.0 - rules.decline_threshold)),
         previous - now),
        (LEVER_RE_ENGAGE, is_dormant, pl.col("trailing_revenue_usd") / 4.0),
        (LEVER_PROTECT, own_falls | region_falls,
         pl.when(pl.col("is_own_forecast"))
         .then(pl.col("svr_rm_revenue_usd") - pl.col("svr_rm_forecast_usd"))
         .otherwise(now * (1.0 - pl.col("region_forecast") / pl.col("region_revenue")))),
        (LEVER_CROSS_SELL_C2, is_svr_rm_without_c2(), pl.col("c2_price").fill_null(0.0)),
        (LEVER_UPSELL_RACKMOUNT,
         (pl.col("segment") == SEGMENT_DESKTOP) & (previous > 0) & (now >= previous * (1.0 + rules.growth_threshold)),
         pl.col("entry_price").fill_null(0.0)),
    ]  # fmt: skip
    return pl.concat(
        [
            enriched.filter(condition).with_columns(lever=pl.lit(lever), usd_at_stake=at_stake)
            for lever, condition, at_stake in picks
        ]
    )
