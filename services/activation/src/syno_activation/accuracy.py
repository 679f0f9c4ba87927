"""Forecast accuracy over time (pure): each forecast run's holdout sMAPE per cohort against the previous published
run's, and the cohorts that got worse by more than the margin (`accuracy_margin`, in sMAPE points).

The figures are the ones forecast.published carries (`CohortForecast.holdout_smape`, the forecast stage's own
cohort means), recorded by activation per run in activation.forecast_accuracy (`warehouse.record_accuracy`), so
the rule that makes a cohort's mean lives only in the forecast stage. The previous published run is the latest
run recorded before this one whose snapshot the dashboards showed (a snapshot kept aside as older is recorded,
never compared with). A cohort is worse when both runs have its sMAPE and

    holdout_smape(now) > holdout_smape(previous) + accuracy_margin

so a change of exactly the margin is not reported; a cohort new in this run, or without a sMAPE in either, is not
compared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from syno_shared.events import CohortForecast


@dataclass(frozen=True, slots=True)
class PreviousAccuracy:
    """The previous published forecast run: its id, target quarter and holdout sMAPE per cohort (None: unknown)."""

    forecast_run_id: str
    target_quarter: date | None
    smape: Mapping[str, float | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccuracyDrop:
    """A cohort whose holdout sMAPE (percent) rose beyond the margin since the previous published run."""

    cohort: str
    smape: float
    previous_smape: float
    previous_target_quarter: date | None
    margin: float


def accuracy_drops(
    cohorts: Sequence[CohortForecast], previous: PreviousAccuracy | None, *, margin: float
) -> tuple[AccuracyDrop, ...]:
    """The cohorts of this run that got worse than in `previous` by more than `margin` sMAPE points, in the order
    the event lists them (none without a previous run)."""
    if previous is None:
        return ()
    drops = []
    for cohort in cohorts:
        before = previous.smape.get(cohort.cohort)
        now = cohort.holdout_smape
        if now is not None and before is not None and now > before + margin:
            drops.append(AccuracyDrop(cohort.cohort, now, before, previous.target_quarter, margin))
    return tuple(drops)
