"""What activation tells people about one snapshot, from the marts and forecasts (pure).

`build_report` runs the storyline, narrative and C2 rules on the frames `warehouse.fetch_inputs` reads,
for the narrated quarter: the latest complete quarter (the one before the forecast's target quarter),
or the snapshot's latest quarter when the forecast has no target. That quarter is the current one: its
storylines are ranked and its best opportunities lead the summary.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

import polars as pl

from syno_activation.c2_highlights import C2Highlights, summarize_c2
from syno_activation.inputs import ActivationInputs
from syno_activation.levers import StorylineRules
from syno_activation.narratives import Narrative, customer_narratives, region_narratives
from syno_activation.storylines import attach_narratives, build_storylines, top_opportunities
from syno_shared.quarters import previous_quarter

TOP_CUSTOMERS: Final = 5


@dataclass(frozen=True, slots=True)
class ActivationReport:
    """`storylines` are the activation.storylines rows (narratives attached); the rest is for the summary:
    `opportunities` one line per best-ranked storyline of the quarter, `opportunity_count` how many the quarter
    has in all."""

    quarter: date | None
    storylines: pl.DataFrame
    region_narratives: tuple[Narrative, ...]
    customer_narratives: tuple[Narrative, ...]
    c2: C2Highlights | None
    opportunities: tuple[str, ...]
    opportunity_count: int = 0


def narrated_quarter(target_quarter: date | None, snapshot: pl.DataFrame) -> date | None:
    """The quarter before the forecast's target; without a target, the snapshot's latest quarter."""
    if target_quarter is not None:
        return previous_quarter(target_quarter)
    latest = snapshot.get_column("quarter").max() if snapshot.height else None
    return latest if isinstance(latest, date) else None


def build_report(
    inputs: ActivationInputs,
    *,
    target_quarter: date | None,
    rules: StorylineRules | None = None,
    top_customers: int = TOP_CUSTOMERS,
) -> ActivationReport:
    rules = rules or StorylineRules()
    quarter = narrated_quarter(target_quarter, inputs.snapshot)
    storylines = build_storylines(inputs, quarter=quarter, rules=rules)
    if quarter is None:
        return ActivationReport(None, attach_narratives(storylines, ()), (), (), None, ())
    regions = tuple(region_narratives(inputs.snapshot, inputs.region_forecasts, quarter=quarter))
    customers = tuple(
        customer_narratives(inputs.snapshot, inputs.customer_forecasts, quarter=quarter, top_n=top_customers)
    )
    return ActivationReport(
        quarter=quarter,
        storylines=attach_narratives(storylines, regions + customers),
        region_narratives=regions,
        customer_narratives=customers,
        c2=summarize_c2(inputs.c2_scorecard, inputs.svr_rm_customers, inputs.c2_customers, quarter=quarter),
        opportunities=top_opportunities(storylines, quarter, rules.top_opportunities),
        opportunity_count=storylines.filter(pl.col("is_current_quarter")).height,
    )
