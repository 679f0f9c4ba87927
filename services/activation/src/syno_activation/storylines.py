"""Activation storylines: one row per quarter, region and segment (the `activation.storylines` grain).

Inputs
------
``snapshot``: rows shaped like ``marts.commercial_activation_snapshot``, one per quarter and customer:
``quarter`` (Date, first day of the quarter), ``region``, ``customer``, ``segment`` ('SVR-RM buyer',
'Desktop only', 'C2 only' or 'Other'), ``revenue_usd``, ``qoq_change`` and ``yoy_change`` (fractions,
0.125 = +12.5%; not used here, the storyline recomputes change at segment level), ``has_c2`` (bool) and
``signal`` ('growth', 'decline', 'dormant', 'new', 'cross-sell C2' or 'steady').

``forecast``: ``target_quarter`` (Date), ``region`` (a region, or 'overall' for the total) and
``forecast_revenue`` (USD).

How a row is built
------------------
- ``actual_revenue``: revenue of the segment's customers in the region and quarter.
- ``forecast_revenue``: the forecast for the *following* quarter (``target_quarter = quarter + 1q``),
  i.e. where the model expects this cell to land next. Forecasts exist per region, not per segment, so
  the region forecast is allocated to its segments by their share of the region's actual revenue this
  quarter. Without a region forecast the 'overall' forecast is allocated by the segment's share of the
  quarter's total revenue. Only the quarters that precede a forecast target get a forecast (normally
  the latest complete quarter).
- ``variance_pct``: ``(forecast_revenue - actual_revenue) / actual_revenue * 100``, the change the
  forecast expects; negative means the forecast sees this cell shrinking. Because of the allocation it
  equals the region's (or overall) expected change. Null without a forecast or with no actual revenue.

Activation score (0-100, higher = more reason to act now)
---------------------------------------------------------
Four components, each in [0, 1]::

    G = clip(-qoq, 0, 1)            growth gap: the segment's quarter-on-quarter revenue decline
                                    (qoq = actual / previous-quarter actual - 1; 0 when unknown)
    X = cross_sell / customers      cross-sell opportunity: share of the cell's customers that are
                                    C2 cross-sell candidates: active SVR-RM buyers without C2
                                    (revenue > 0, not has_c2), or signal 'cross-sell C2' (the mart
                                    also gives it to active desktop buyers without C2)
    D = dormant / customers         dormant share: customers with signal 'dormant'
    F = clip(-variance_pct/100, 0, 1)  forecast risk: expected decline next quarter (0 when unknown)

    activation_score = round(100 * clip(0.30*G + 0.25*X + 0.25*D + 0.20*F, 0, 1), 1)

Recommended action (first rule that matches)
--------------------------------------------
1. D >= 0.5                                  -> "Re-engage dormant accounts"
2. qoq <= -20%                               -> "Win back declining accounts"
3. segment 'SVR-RM buyer' and X >= 0.25      -> "Cross-sell C2 to SVR-RM buyers"
4. variance_pct <= -10                       -> "Protect next-quarter pipeline"
5. segment 'Desktop only' and qoq >= +20%    -> "Upsell rackmount to growing desktop buyers"
6. qoq >= +20%                               -> "Expand with growing accounts"
7. otherwise                                 -> "Maintain cadence"

Confidence note
---------------
Sentences, in this order, about what the row rests on: where the forecast came from ("Region forecast
allocated by revenue share.", "Overall forecast allocated by revenue share.", "No forecast for the next
quarter."), "No prior-quarter revenue to compare." when qoq is unknown, and "Only N customer(s): treat as
anecdotal." when the cell has fewer than 3 customers.

Narratives on the rows
----------------------
`attach_narratives` adds the narrated quarter's text to its rows: ``region_narrative`` on every row
of the region, ``customer_narratives`` (one line per top customer, by revenue) on the row of each top
customer's region and segment. Other rows, and other quarters, carry nulls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import polars as pl

from syno_activation.narratives import Narrative, narratives_frame
from syno_activation.segments import (
    OVERALL,
    SEGMENT_DESKTOP,
    SEGMENT_SVR_RM,
    is_svr_rm_without_c2,
)

WEIGHT_GROWTH_GAP: Final = 0.30
WEIGHT_CROSS_SELL: Final = 0.25
WEIGHT_DORMANT: Final = 0.25
WEIGHT_FORECAST_RISK: Final = 0.20

DORMANT_SHARE_ACTION: Final = 0.5
DECLINE_ACTION: Final = -0.20
CROSS_SELL_SHARE_ACTION: Final = 0.25
FORECAST_RISK_ACTION_PCT: Final = -10.0
GROWTH_ACTION: Final = 0.20
FEW_CUSTOMERS: Final = 3

ACTION_DORMANT: Final = "Re-engage dormant accounts"
ACTION_DECLINE: Final = "Win back declining accounts"
ACTION_CROSS_SELL: Final = "Cross-sell C2 to SVR-RM buyers"
ACTION_PROTECT: Final = "Protect next-quarter pipeline"
ACTION_UPSELL_RACKMOUNT: Final = "Upsell rackmount to growing desktop buyers"
ACTION_EXPAND: Final = "Expand with growing accounts"
ACTION_MAINTAIN: Final = "Maintain cadence"

STORYLINE_SCHEMA: Final = pl.Schema(
    {
        "quarter": pl.Date(),
        "region": pl.String(),
        "segment": pl.String(),
        "actual_revenue": pl.Float64(),
        "forecast_revenue": pl.Float64(),
        "variance_pct": pl.Float64(),
        "activation_score": pl.Float64(),
        "recommended_action": pl.String(),
        "confidence_note": pl.String(),
    }
)

STORYLINE_TABLE_SCHEMA: Final = pl.Schema(
    {**STORYLINE_SCHEMA, "region_narrative": pl.String(), "customer_narratives": pl.String()}
)

HEADLINE_STORYLINES: Final = 3

_KEYS: Final = ["quarter", "region", "segment"]


def _is_cross_sell_candidate() -> pl.Expr:
    return is_svr_rm_without_c2() | (pl.col("signal") == "cross-sell C2")


def _cells(snapshot: pl.LazyFrame) -> pl.LazyFrame:
    """Revenue and customer counts per quarter, region and segment."""
    return snapshot.group_by(_KEYS).agg(
        actual_revenue=pl.col("revenue_usd").cast(pl.Float64).sum(),
        customers=pl.col("customer").n_unique(),
        dormant_customers=pl.col("customer").filter(pl.col("signal") == "dormant").n_unique(),
        cross_sell_customers=pl.col("customer").filter(_is_cross_sell_candidate()).n_unique(),
    )


def _previous_quarter(cells: pl.LazyFrame) -> pl.LazyFrame:
    """Each cell's revenue, keyed on the quarter after it, so a join gives 'previous quarter'."""
    return cells.select(
        pl.col("quarter").dt.offset_by("1q"),
        "region",
        "segment",
        previous_revenue=pl.col("actual_revenue"),
    )


def _forecasts(forecast: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """Region and overall forecasts keyed on the quarter *before* their target quarter."""
    keyed = forecast.select(
        quarter=pl.col("target_quarter").dt.offset_by("-1q"),
        region=pl.col("region"),
        forecast_revenue=pl.col("forecast_revenue").cast(pl.Float64),
    )
    regional = keyed.filter(pl.col("region") != OVERALL).rename({"forecast_revenue": "region_forecast"})
    overall = keyed.filter(pl.col("region") == OVERALL).select("quarter", overall_forecast=pl.col("forecast_revenue"))
    return regional, overall


def _share(part: str, whole: str) -> pl.Expr:
    return pl.when(pl.col(whole) > 0).then(pl.col(part) / pl.col(whole))


def _growth_gap() -> pl.Expr:
    return (-pl.col("qoq")).clip(0.0, 1.0).fill_null(0.0)


def _forecast_risk() -> pl.Expr:
    return (-pl.col("variance_pct") / 100.0).clip(0.0, 1.0).fill_null(0.0)


def _activation_score() -> pl.Expr:
    weighted = (
        WEIGHT_GROWTH_GAP * _growth_gap()
        + WEIGHT_CROSS_SELL * pl.col("cross_sell_share")
        + WEIGHT_DORMANT * pl.col("dormant_share")
        + WEIGHT_FORECAST_RISK * _forecast_risk()
    )
    return (100.0 * weighted.clip(0.0, 1.0)).round(1)


def _recommended_action() -> pl.Expr:
    qoq = pl.col("qoq").fill_null(0.0)
    return (
        pl.when(pl.col("dormant_share") >= DORMANT_SHARE_ACTION)
        .then(pl.lit(ACTION_DORMANT))
        .when(qoq <= DECLINE_ACTION)
        .then(pl.lit(ACTION_DECLINE))
        .when((pl.col("segment") == SEGMENT_SVR_RM) & (pl.col("cross_sell_share") >= CROSS_SELL_SHARE_ACTION))
        .then(pl.lit(ACTION_CROSS_SELL))
        .when(pl.col("variance_pct").fill_null(0.0) <= FORECAST_RISK_ACTION_PCT)
        .then(pl.lit(ACTION_PROTECT))
        .when((pl.col("segment") == SEGMENT_DESKTOP) & (qoq >= GROWTH_ACTION))
        .then(pl.lit(ACTION_UPSELL_RACKMOUNT))
        .when(qoq >= GROWTH_ACTION)
        .then(pl.lit(ACTION_EXPAND))
        .otherwise(pl.lit(ACTION_MAINTAIN))
    )


def _confidence_note() -> pl.Expr:
    forecast_source = (
        pl.when(pl.col("region_forecast").is_not_null())
        .then(pl.lit("Region forecast allocated by revenue share."))
        .when(pl.col("overall_forecast").is_not_null())
        .then(pl.lit("Overall forecast allocated by revenue share."))
        .otherwise(pl.lit("No forecast for the next quarter."))
    )
    no_history = pl.when(pl.col("qoq").is_null()).then(pl.lit("No prior-quarter revenue to compare."))
    few_customers = pl.when(pl.col("customers") < FEW_CUSTOMERS).then(
        pl.format("Only {} customer(s): treat as anecdotal.", pl.col("customers"))
    )
    return pl.concat_str([forecast_source, no_history, few_customers], separator=" ", ignore_nulls=True)


def build_storylines(snapshot: pl.LazyFrame | pl.DataFrame, forecast: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """Build `activation.storylines` rows (see the module docstring for every rule).

    Returns a lazy frame with the columns of `STORYLINE_SCHEMA`, sorted by quarter, region, segment.
    """
    cells = _cells(snapshot.lazy())
    regional, overall = _forecasts(forecast.lazy())
    region_totals = cells.group_by("quarter", "region").agg(region_revenue=pl.col("actual_revenue").sum())
    quarter_totals = cells.group_by("quarter").agg(quarter_revenue=pl.col("actual_revenue").sum())

    enriched = (
        cells.join(_previous_quarter(cells), on=_KEYS, how="left")
        .join(region_totals, on=["quarter", "region"], how="left")
        .join(quarter_totals, on="quarter", how="left")
        .join(regional, on=["quarter", "region"], how="left")
        .join(overall, on="quarter", how="left")
        .with_columns(
            qoq=pl.when(pl.col("previous_revenue") > 0).then(
                pl.col("actual_revenue") / pl.col("previous_revenue") - 1.0
            ),
            dormant_share=_share("dormant_customers", "customers").fill_null(0.0),
            cross_sell_share=_share("cross_sell_customers", "customers").fill_null(0.0),
            forecast_unrounded=pl.coalesce(
                pl.col("region_forecast") * _share("actual_revenue", "region_revenue"),
                pl.col("overall_forecast") * _share("actual_revenue", "quarter_revenue"),
            ),
        )
        .with_columns(
            forecast_revenue=pl.col("forecast_unrounded").round(2),
            variance_pct=pl.when(pl.col("actual_revenue") > 0)
            .then((pl.col("forecast_unrounded") / pl.col("actual_revenue") - 1.0) * 100.0)
            .round(1),
        )
    )
    return (
        enriched.with_columns(
            activation_score=_activation_score(),
            recommended_action=_recommended_action(),
            confidence_note=_confidence_note(),
            actual_revenue=pl.col("actual_revenue").round(2),
        )
        .select(
            [pl.col(name).cast(dtype) for name, dtype in STORYLINE_SCHEMA.items()],
        )
        .sort(_KEYS)
    )


def attach_narratives(storylines: pl.DataFrame, narratives: Sequence[Narrative]) -> pl.DataFrame:
    """The `activation.storylines` rows: `storylines` with the narratives of their quarter, region and
    segment (columns of `STORYLINE_TABLE_SCHEMA`)."""
    frame = narratives_frame(narratives)
    regions = frame.filter(pl.col("scope") == "region").select("quarter", "region", region_narrative=pl.col("text"))
    customers = (
        frame.filter(pl.col("scope") == "customer")
        .group_by(_KEYS, maintain_order=True)
        .agg(customer_narratives=pl.col("text").str.join("\n"))
    )
    return (
        storylines.join(regions, on=["quarter", "region"], how="left")
        .join(customers, on=_KEYS, how="left")
        .select(STORYLINE_TABLE_SCHEMA.names())
    )


def headline_storylines(storylines: pl.DataFrame, quarter: date, count: int = HEADLINE_STORYLINES) -> tuple[str, ...]:
    """The `count` highest-scored storylines of `quarter` as one line each (ties by region, segment)."""
    top = (
        storylines.filter(pl.col("quarter") == quarter)
        .sort(["activation_score", "region", "segment"], descending=[True, False, False])
        .head(count)
    )
    return tuple(
        f"{row['region']} / {row['segment']}: {row['recommended_action']} (score {row['activation_score']:.1f})"
        for row in top.iter_rows(named=True)
    )
