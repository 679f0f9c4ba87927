"""Plain-English narratives per region and per top customer, from templates and numbers only.

Inputs are the same frames as `storylines`: the customer-level activation snapshot (quarter, region,
customer, segment, revenue_usd, qoq_change, yoy_change as fractions, has_c2, signal) and the region
forecast frame (target_quarter, region or 'overall', forecast_revenue); customer narratives also take
the top customers' SVR-RM revenue forecasts (target_quarter, customer, forecast_revenue).

Numbers are formatted the same way everywhere: `format_usd` ("$1.2M", "$350.0K", "$950", "-$1.2M") and
`format_pct` for fractions ("+12.5%", "-3.0%", "0.0%", "n/a" when unknown). Text is assembled from
fixed sentences, so the same data always gives the same words.

Region narrative (one per region in the chosen quarter, regions sorted)::

    FR in Q3 2025: revenue $230.0K (QoQ +35.3%, YoY n/a) from 4 active customers.
    Accounts: 2 growing, 1 declining, 1 dormant, 1 new.
    Re-engage dormant: Edda.
    Cross-sell: 2 SVR-RM buyers without C2 (Acme, Dune).
    Next quarter (Q4 2025) forecast $184.0K (-20.0% vs Q3 2025): forecast risk.

Cross-sell candidates are SVR-RM buyers with revenue in the quarter and no C2 yet.
The dormant sentence (names sorted) and the cross-sell sentence (names by revenue) are left out when
they have nobody to name; at most three names are shown, then "and N more"; the forecast sentence reads
"No forecast for Q4 2025." without one, and ": forecast risk" is added when the forecast expects a fall
of 10% or more.

Customer narrative (top N customers by revenue in the quarter, ties by name)::

    Acme (FR, SVR-RM buyer) in Q3 2025: revenue $120.0K (QoQ +20.0%, YoY n/a), growing.
    Buys SVR-RM without C2: cross-sell C2. Next quarter (Q4 2025) SVR-RM forecast $130.0K.

A customer buying in several regions is narrated once, in the region where it spent most (its
changes and signal are that region's); the forecast sentence is left out when the customer has no
SVR-RM forecast of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

import polars as pl

from syno_activation.segments import is_svr_rm_without_c2
from syno_shared.quarters import add_quarters, next_quarter, quarter_label

FORECAST_RISK_CHANGE: Final = -0.10
MAX_NAMES: Final = 3

SIGNAL_WORDS: Final[dict[str, str]] = {
    "growth": "growing",
    "decline": "declining",
    "dormant": "dormant",
    "new": "new account",
    "cross-sell C2": "C2 cross-sell candidate",
    "steady": "steady",
}

_UNITS: Final = ((1e9, "B"), (1e6, "M"), (1e3, "K"))


@dataclass(frozen=True, slots=True)
class Narrative:
    """One narrative: about a region or a customer, for one quarter.

    `region` is the region narrated (for a customer, the region where it spent most); `segment` is the
    customer's segment, None for a region.
    """

    scope: Literal["region", "customer"]
    subject: str
    quarter: date
    text: str
    region: str
    segment: str | None = None


def format_usd(value: float | None) -> str:
    """Compact US dollars: 1_234_567 -> "$1.2M", 350_000 -> "$350.0K", 950 -> "$950", None -> "n/a"."""
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    for unit, suffix in _UNITS:
        scaled = round(magnitude / unit, 1)
        if scaled >= 1.0:
            return f"{sign}${scaled:.1f}{suffix}"
    return f"{sign}${magnitude:.0f}"


def format_pct(fraction: float | None) -> str:
    """A fraction as a signed percentage with one decimal: 0.125 -> "+12.5%", None -> "n/a"."""
    if fraction is None:
        return "n/a"
    rounded = round(fraction * 100.0, 1)
    if rounded == 0:
        return "0.0%"
    return f"{rounded:+.1f}%"


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _change(current: float, previous: float | None) -> float | None:
    if previous is None or previous <= 0:
        return None
    return current / previous - 1.0


def _latest_quarter(snapshot: pl.LazyFrame) -> date | None:
    latest = snapshot.select(pl.col("quarter").max()).collect().item()
    return latest if isinstance(latest, date) else None


def _region_facts(snapshot: pl.LazyFrame, quarter: date) -> pl.DataFrame:
    """Per region: revenue now, a quarter ago and a year ago, signal counts and cross-sell names."""
    current = snapshot.filter(pl.col("quarter") == quarter)
    facts = current.group_by("region").agg(
        revenue=pl.col("revenue_usd").cast(pl.Float64).sum(),
        active=pl.col("customer").filter(pl.col("revenue_usd") > 0).n_unique(),
        growing=pl.col("customer").filter(pl.col("signal") == "growth").n_unique(),
        declining=pl.col("customer").filter(pl.col("signal") == "decline").n_unique(),
        dormant=pl.col("customer").filter(pl.col("signal") == "dormant").n_unique(),
        new=pl.col("customer").filter(pl.col("signal") == "new").n_unique(),
    )
    cross_sell = (
        current.filter(is_svr_rm_without_c2())
        .sort(["revenue_usd", "customer"], descending=[True, False])
        .group_by("region", maintain_order=True)
        .agg(cross_sell=pl.col("customer").unique(maintain_order=True))
    )
    dormant = (
        current.filter(pl.col("signal") == "dormant")
        .sort("customer")
        .group_by("region", maintain_order=True)
        .agg(dormant_names=pl.col("customer").unique(maintain_order=True))
    )

    def revenue_at(when: date, name: str) -> pl.LazyFrame:
        return (
            snapshot.filter(pl.col("quarter") == when)
            .group_by("region")
            .agg(pl.col("revenue_usd").cast(pl.Float64).sum().alias(name))
        )

    return (
        facts.join(cross_sell, on="region", how="left")
        .join(dormant, on="region", how="left")
        .join(revenue_at(add_quarters(quarter, -1), "previous"), on="region", how="left")
        .join(revenue_at(add_quarters(quarter, -4), "year_ago"), on="region", how="left")
        .sort("region")
        .collect()
    )


def _forecasts_by(forecast: pl.LazyFrame | pl.DataFrame | None, key: str, target: date) -> dict[str, float]:
    """`key` (region or customer) -> forecast revenue for the `target` quarter."""
    if forecast is None:
        return {}
    rows = (
        forecast.lazy()
        .filter(pl.col("target_quarter") == target)
        .group_by(key)
        .agg(pl.col("forecast_revenue").cast(pl.Float64).sum())
        .collect()
    )
    return dict(zip(rows[key].to_list(), rows["forecast_revenue"].to_list(), strict=True))


def _forecast_sentence(quarter: date, revenue: float, forecast: float | None) -> str:
    target = quarter_label(next_quarter(quarter))
    if forecast is None:
        return f"No forecast for {target}."
    change = _change(forecast, revenue)
    risk = change is not None and change <= FORECAST_RISK_CHANGE
    return (
        f"Next quarter ({target}) forecast {format_usd(forecast)} "
        f"({format_pct(change)} vs {quarter_label(quarter)}){': forecast risk' if risk else ''}."
    )


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" and {len(names) - MAX_NAMES} more" if len(names) > MAX_NAMES else "")


def region_narratives(
    snapshot: pl.LazyFrame | pl.DataFrame,
    forecast: pl.LazyFrame | pl.DataFrame,
    *,
    quarter: date | None = None,
) -> list[Narrative]:
    """One narrative per region for `quarter` (default: the latest quarter in the snapshot).

    The forecast sentence uses the region's forecast for the next quarter; a region without one
    falls back to "No forecast for <quarter>." (the 'overall' forecast is not split by region here).
    """
    lazy = snapshot.lazy()
    quarter = quarter or _latest_quarter(lazy)
    if quarter is None:
        return []
    forecasts = _forecasts_by(forecast, "region", next_quarter(quarter))
    narratives: list[Narrative] = []
    for row in _region_facts(lazy, quarter).iter_rows(named=True):
        region: str = row["region"]
        revenue: float = row["revenue"]
        sentences = [
            f"{region} in {quarter_label(quarter)}: revenue {format_usd(revenue)} "
            f"(QoQ {format_pct(_change(revenue, row['previous']))}, "
            f"YoY {format_pct(_change(revenue, row['year_ago']))}) "
            f"from {_plural(row['active'], 'active customer')}.",
            f"Accounts: {row['growing']} growing, {row['declining']} declining, "
            f"{row['dormant']} dormant, {row['new']} new.",
        ]
        dormant_names: list[str] = row["dormant_names"] or []
        if dormant_names:
            sentences.append(f"Re-engage dormant: {_names(dormant_names)}.")
        candidates: list[str] = row["cross_sell"] or []
        if candidates:
            sentences.append(
                f"Cross-sell: {_plural(len(candidates), 'SVR-RM buyer')} without C2 ({_names(candidates)})."
            )
        sentences.append(_forecast_sentence(quarter, revenue, forecasts.get(region)))
        narratives.append(Narrative("region", region, quarter, " ".join(sentences), region=region))
    return narratives


def customer_narratives(
    snapshot: pl.LazyFrame | pl.DataFrame,
    forecast: pl.LazyFrame | pl.DataFrame | None = None,
    *,
    quarter: date | None = None,
    top_n: int = 5,
) -> list[Narrative]:
    """One narrative for each of the `top_n` customers by revenue in `quarter` (default: latest).

    `forecast` holds the customers' SVR-RM revenue forecasts (target_quarter, customer, forecast_revenue).
    """
    lazy = snapshot.lazy()
    quarter = quarter or _latest_quarter(lazy)
    if quarter is None:
        return []
    forecasts = _forecasts_by(forecast, "customer", next_quarter(quarter))
    in_top_region = pl.col("revenue_usd").arg_max()
    top = (
        lazy.filter(pl.col("quarter") == quarter)
        .sort("region")
        .group_by("customer")
        .agg(
            pl.col("region").get(in_top_region),
            pl.col("segment").get(in_top_region),
            pl.col("qoq_change").get(in_top_region),
            pl.col("yoy_change").get(in_top_region),
            pl.col("signal").get(in_top_region),
            pl.col("has_c2").any(),
            pl.col("revenue_usd").cast(pl.Float64).sum(),
        )
        .sort(["revenue_usd", "customer"], descending=[True, False])
        .head(top_n)
        .with_columns(is_cross_sell=is_svr_rm_without_c2())
        .collect()
    )
    narratives: list[Narrative] = []
    for row in top.iter_rows(named=True):
        customer: str = row["customer"]
        signal: str = row["signal"]
        text = (
            f"{customer} ({row['region']}, {row['segment']}) in {quarter_label(quarter)}: "
            f"revenue {format_usd(row['revenue_usd'])} "
            f"(QoQ {format_pct(row['qoq_change'])}, YoY {format_pct(row['yoy_change'])}), "
            f"{SIGNAL_WORDS.get(signal, signal)}."
        )
        if row["is_cross_sell"]:
            text += " Buys SVR-RM without C2: cross-sell C2."
        if customer in forecasts:
            text += (
                f" Next quarter ({quarter_label(next_quarter(quarter))}) SVR-RM forecast "
                f"{format_usd(forecasts[customer])}."
            )
        narratives.append(Narrative("customer", customer, quarter, text, region=row["region"], segment=row["segment"]))
    return narratives


NARRATIVE_SCHEMA: Final = pl.Schema(
    {
        "scope": pl.String(),
        "subject": pl.String(),
        "quarter": pl.Date(),
        "region": pl.String(),
        "segment": pl.String(),
        "text": pl.String(),
    }
)


def narratives_frame(narratives: Sequence[Narrative]) -> pl.DataFrame:
    """Narratives as a frame (scope, subject, quarter, region, segment, text)."""
    return pl.DataFrame(
        [(n.scope, n.subject, n.quarter, n.region, n.segment, n.text) for n in narratives],
        schema=NARRATIVE_SCHEMA,
        orient="row",
    )
