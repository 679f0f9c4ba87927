"""Activation storylines: one row per quarter, region, segment and lever (the `activation.storylines` grain).

A storyline is an opportunity: one lever (`levers`) pulled on the accounts of one cell (quarter, region and
segment of marts.commercial_activation_snapshot), with the USD at stake and the accounts behind it. Every
quarter of the snapshot gets its storylines, so the table shows trends; the current quarter (the latest
complete one, before the forecast's target) is the one the run summary ranks and tells.

Columns
-------
- ``customers``: the accounts behind the storyline; ``accounts``: all of them as a JSON list (fields in
  `accounts.ACCOUNT_FIELDS`), most USD at stake first. ``actual_revenue``, ``previous_revenue``,
  ``year_ago_revenue`` and ``usd_at_stake`` are the sums over exactly those accounts (this quarter, the one
  before, the same quarter a year earlier; money at stake per quarter).
- ``forecast_revenue``: the region's forecast for the next quarter shared out to the accounts by their share
  of the region's revenue this quarter (null without a region forecast); ``variance_pct``: ``(forecast_revenue
  - actual_revenue) / actual_revenue * 100`` (null without either).
- ``is_anecdotal``: the cell (quarter, region, segment, all its customers) has fewer than ``min_customers``
  customers, or sold less than ``min_revenue_usd`` both this quarter and the quarter before (so a cell that
  just collapsed stays material). ``confidence``: 'low' when anecdotal, else 'high' for money already lost
  (win_back, re_engage), 'medium' for money estimated from a price or a forecast.
- ``activation_score``: the storyline's share of the quarter's USD at stake, in percent (one decimal; 0 when
  nothing is at stake): ``round(100 * usd_at_stake / sum of the quarter's usd_at_stake, 1)``.
- ``opportunity_rank``: 1, 2, ... within the quarter: material storylines first, then by USD at stake
  (highest first), ties by lever (`levers.LEVERS` order), region, segment. Quarters are never ranked
  against each other. ``is_current_quarter`` marks the quarter the summary tells.
- ``recommended_action`` and ``confidence_note``: words from `actions`.
- ``region_narrative`` and ``customer_narratives`` (`attach_narratives`): on the narrated quarter's rows,
  the region's narrative on every row of the region, the top customers' narratives on the rows of each top
  customer's region and segment; null elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import polars as pl

from syno_activation.accounts import account_facts, accounts_json
from syno_activation.actions import confidence_note, opportunity_line, recommended_action
from syno_activation.c2_highlights import attach_rate
from syno_activation.inputs import ActivationInputs
from syno_activation.levers import (
    LEVERS,
    OBSERVED_LEVERS,
    StorylineRules,
    c2_offers,
    entry_rackmount_prices,
    lever_accounts,
    region_forecasts,
)
from syno_activation.narratives import Narrative, narratives_frame
from syno_activation.segments import OVERALL

STORYLINE_SCHEMA: Final = pl.Schema(
    {
        "quarter": pl.Date(),
        "region": pl.String(),
        "segment": pl.String(),
        "lever": pl.String(),
        "is_current_quarter": pl.Boolean(),
        "opportunity_rank": pl.Int32(),
        "customers": pl.Int32(),
        "actual_revenue": pl.Float64(),
        "previous_revenue": pl.Float64(),
        "year_ago_revenue": pl.Float64(),
        "forecast_revenue": pl.Float64(),
        "variance_pct": pl.Float64(),
        "usd_at_stake": pl.Float64(),
        "is_anecdotal": pl.Boolean(),
        "confidence": pl.String(),
        "activation_score": pl.Float64(),
        "recommended_action": pl.String(),
        "confidence_note": pl.String(),
        "accounts": pl.String(),
    }
)

STORYLINE_TABLE_SCHEMA: Final = pl.Schema(
    {**STORYLINE_SCHEMA, "region_narrative": pl.String(), "customer_narratives": pl.String()}
)

_KEYS: Final = ["quarter", "region", "segment", "lever"]
_CELL: Final = ["quarter", "region", "segment"]


def _cells(snapshot: pl.LazyFrame) -> pl.LazyFrame:
    """Per quarter, region and segment: customers, and the larger of this and last quarter's revenue."""
    cells = snapshot.group_by(_CELL).agg(
        cell_customers=pl.col("customer").n_unique(), cell_revenue=pl.col("revenue_usd").cast(pl.Float64).sum()
    )
    before = cells.select(pl.col("quarter").dt.offset_by("1q"), "region", "segment", before="cell_revenue")
    return cells.join(before, on=_CELL, how="left").select(
        *_CELL,
        "cell_customers",
        cell_reference_revenue=pl.max_horizontal("cell_revenue", pl.col("before").fill_null(0.0)),
    )


def _aggregate(accounts: pl.LazyFrame) -> pl.LazyFrame:
    """Sums over each storyline's accounts, taken in one fixed order (the same floats on every run)."""
    return (
        accounts.sort([*_KEYS, "customer"])
        .group_by(_KEYS, maintain_order=True)
        .agg(
            customers=pl.len(),
            actual_revenue=pl.col("revenue_usd").sum(),
            previous_revenue=pl.col("previous_revenue_usd").sum(),
            year_ago_revenue=pl.col("year_ago_revenue_usd").sum(),
            usd_at_stake=pl.col("usd_at_stake").sum(),
            own_forecast_accounts=pl.col("is_own_forecast").sum(),
            interval_accounts=pl.col("is_interval_forecast").sum(),
            first_last_order=pl.col("last_order_quarter").min(),
            latest_last_order=pl.col("last_order_quarter").max(),
            accounts=accounts_json(),
            **{
                name: pl.col(name).first()
                for name in (
                    "c2_offer",
                    "c2_price",
                    "c2_price_basis",
                    "is_offer_overall",
                    "entry_price",
                    "region_revenue",
                    "region_forecast",
                )
            },
        )
    )


def _ranked(storylines: pl.LazyFrame, rules: StorylineRules, current: date | None) -> pl.LazyFrame:
    quarter_total = pl.col("usd_at_stake").sum().over("quarter")
    lever_order = pl.col("lever").replace_strict({lever: order for order, lever in enumerate(LEVERS)})
    return (
        storylines.with_columns(
            is_anecdotal=(pl.col("cell_customers") < rules.min_customers)
            | (pl.col("cell_reference_revenue") < rules.min_revenue_usd),
            forecast_unrounded=pl.when(pl.col("region_revenue") > 0).then(
                pl.col("region_forecast") * pl.col("actual_revenue") / pl.col("region_revenue")
            ),
        )
        .with_columns(
            confidence=pl.when(pl.col("is_anecdotal"))
            .then(pl.lit("low"))
            .when(pl.col("lever").is_in(OBSERVED_LEVERS))
            .then(pl.lit("high"))
            .otherwise(pl.lit("medium")),
            activation_score=pl.when(quarter_total > 0)
            .then(100.0 * pl.col("usd_at_stake") / quarter_total)
            .otherwise(0.0)
            .round(1),
            forecast_revenue=pl.col("forecast_unrounded").round(2),
            variance_pct=pl.when(pl.col("actual_revenue") > 0)
            .then((pl.col("forecast_unrounded") / pl.col("actual_revenue") - 1.0) * 100.0)
            .round(1),
            is_current_quarter=(pl.col("quarter") == pl.lit(current, dtype=pl.Date)).fill_null(False),
            _lever_order=lever_order,
        )
        .sort(
            ["quarter", "is_anecdotal", "usd_at_stake", "_lever_order", "region", "segment"],
            descending=[False, False, True, False, False, False],
        )
        .with_columns(opportunity_rank=pl.int_range(1, pl.len() + 1).over("quarter"))
    )


def build_storylines(
    inputs: ActivationInputs, *, quarter: date | None, rules: StorylineRules | None = None
) -> pl.DataFrame:
    """The `activation.storylines` rows without narratives (columns of `STORYLINE_SCHEMA`), sorted by quarter
    and rank. `quarter` is the current quarter (None: no row is current)."""
    rules = rules or StorylineRules()
    facts = account_facts(inputs.snapshot, inputs.svr_rm_revenue, inputs.customer_forecasts)
    accounts = lever_accounts(
        facts,
        offers=c2_offers(inputs.c2_scorecard),
        entry_prices=entry_rackmount_prices(inputs.svr_rm_revenue),
        forecasts=region_forecasts(inputs.region_forecasts),
        rules=rules,
    )
    rates = (
        attach_rate(inputs.svr_rm_customers, inputs.c2_customers)
        .lazy()
        .filter(pl.col("region") != OVERALL)
        .select("quarter", "region", "attach_rate")
    )
    storylines = (
        _aggregate(accounts)
        .join(_cells(inputs.snapshot.lazy()), on=_CELL, how="left")
        .join(rates, on=["quarter", "region"], how="left")
        .with_columns(pl.col("actual_revenue", "previous_revenue", "year_ago_revenue", "usd_at_stake").round(2))
        .pipe(_ranked, rules, quarter)
        .collect()
    )
    rows = list(storylines.iter_rows(named=True))
    return storylines.with_columns(
        recommended_action=pl.Series([recommended_action(row) for row in rows], dtype=pl.String),
        confidence_note=pl.Series([confidence_note(row, rules) for row in rows], dtype=pl.String),
    ).select([pl.col(name).cast(dtype) for name, dtype in STORYLINE_SCHEMA.items()])


def attach_narratives(storylines: pl.DataFrame, narratives: Sequence[Narrative]) -> pl.DataFrame:
    """The `activation.storylines` rows: `storylines` with the narratives of their quarter, region and
    segment (columns of `STORYLINE_TABLE_SCHEMA`)."""
    frame = narratives_frame(narratives)
    regions = frame.filter(pl.col("scope") == "region").select("quarter", "region", region_narrative=pl.col("text"))
    customers = (
        frame.filter(pl.col("scope") == "customer")
        .group_by(_CELL, maintain_order=True)
        .agg(customer_narratives=pl.col("text").str.join("\n"))
    )
    return (
        storylines.join(regions, on=["quarter", "region"], how="left")
        .join(customers, on=_CELL, how="left")
        .select(STORYLINE_TABLE_SCHEMA.names())
    )


def top_opportunities(storylines: pl.DataFrame, quarter: date, count: int) -> tuple[str, ...]:
    """The `count` best-ranked storylines of `quarter`, one line each (`actions.opportunity_line`)."""
    top = storylines.filter(pl.col("quarter") == quarter).sort("opportunity_rank").head(count)
    return tuple(opportunity_line(row) for row in top.iter_rows(named=True))
