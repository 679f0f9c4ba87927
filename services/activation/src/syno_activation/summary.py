"""The run summary people receive, assembled from the forecast.published event and the report (pure).

Everything about the file and its quality travels on the event (`workbook`, `quality`): activation
never reads another stage's tables. Opportunities, narratives and C2 highlights come from the report
activation builds from the marts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final, TypeVar
from urllib.parse import quote

from syno_activation.accuracy import AccuracyDrop
from syno_activation.report import ActivationReport
from syno_shared.events import (
    CohortForecast,
    ForecastPublished,
    QualityFacts,
    UnconvertibleValue,
    UnmappedValue,
    WorkbookFacts,
)

TOP_VALUES: Final = 5
OPPORTUNITIES_DASHBOARD: Final = "opportunities"  # the dashboard_links entry that lists every storyline

ValueT = TypeVar("ValueT", UnmappedValue, UnconvertibleValue)


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Everything a run summary says. sMAPE values are in percent, e.g. 12.5.

    `top_unmapped` and `top_unconvertible` are the most frequent of `quality`'s lists (a data team
    fixes its mapping tables from them); the rest are counted, not listed. `opportunities` are the narrated
    quarter's best storylines, one line each, of `opportunity_count` in all; `opportunities_link` opens the
    dashboard listing them all. `accuracy_drops` are the cohorts whose holdout accuracy got worse than in the
    previous published forecast run by more than the margin (`accuracy`).
    """

    run_id: str
    snapshot_id: str
    workbook: WorkbookFacts
    quality: QualityFacts
    publication: str = "published"
    top_unmapped: tuple[UnmappedValue, ...] = ()
    top_unconvertible: tuple[UnconvertibleValue, ...] = ()
    target_quarter: date | None = None
    cohorts: tuple[CohortForecast, ...] = ()
    accuracy_drops: tuple[AccuracyDrop, ...] = ()
    headlines: tuple[str, ...] = ()
    narrated_quarter: date | None = None
    opportunities: tuple[str, ...] = ()
    opportunity_count: int = 0
    opportunities_link: Link | None = None
    region_narratives: tuple[str, ...] = ()
    customer_narratives: tuple[str, ...] = ()
    c2_highlights: tuple[str, ...] = ()
    trace_url: str | None = None
    dashboards: tuple[Link, ...] = ()


def trace_url(grafana_url: str, trace_id: str | None) -> str | None:
    """A Grafana Explore link opening the run's trace in Tempo."""
    if not trace_id:
        return None
    pane = {"datasource": "tempo", "queries": [{"refId": "A", "queryType": "traceql", "query": trace_id}]}
    return f"{grafana_url.rstrip('/')}/explore?left={quote(json.dumps(pane, separators=(',', ':')))}"


def tier_headlines(forecast: ForecastPublished) -> tuple[str, ...]:
    """One line per SVR-RM tier revenue forecast, T1..T3 first (the cohorts the business asks for)."""
    rows = sorted((t for t in forecast.tiers if t.metric == "revenue_usd"), key=lambda t: (t.tier == "TOTAL", t.tier))
    lines = []
    for tier in rows:
        interval = (
            f" (80%: ${tier.lower_80:,.0f} to ${tier.upper_80:,.0f})"
            if tier.lower_80 is not None and tier.upper_80 is not None
            else ""
        )
        lines.append(f"SVR-RM {tier.tier}: ${tier.point:,.0f}{interval}, {tier.model}")
    return tuple(lines)


def most_frequent(values: Sequence[ValueT], count: int = TOP_VALUES) -> tuple[ValueT, ...]:
    """The `count` values carried on most rows; ties in the order the event lists them."""
    return tuple(sorted(values, key=lambda value: -value.rows)[:count])


def build_run_summary(
    *,
    forecast: ForecastPublished,
    report: ActivationReport,
    grafana_url: str,
    trace_id: str | None,
    dashboards: Mapping[str, str],
    accuracy_drops: Sequence[AccuracyDrop] = (),
) -> RunSummary:
    return RunSummary(
        run_id=forecast.run_id,
        snapshot_id=forecast.snapshot_id,
        workbook=forecast.workbook,
        publication=forecast.publication,
        quality=forecast.quality,
        top_unmapped=most_frequent(forecast.quality.unmapped_values),
        top_unconvertible=most_frequent(forecast.quality.unconvertible_values),
        target_quarter=forecast.target_quarter,
        cohorts=tuple(forecast.cohorts),
        accuracy_drops=tuple(accuracy_drops),
        headlines=tier_headlines(forecast),
        narrated_quarter=report.quarter,
        opportunities=report.opportunities,
        opportunity_count=report.opportunity_count,
        opportunities_link=(
            Link(OPPORTUNITIES_DASHBOARD, dashboards[OPPORTUNITIES_DASHBOARD])
            if OPPORTUNITIES_DASHBOARD in dashboards
            else None
        ),
        region_narratives=tuple(narrative.text for narrative in report.region_narratives),
        customer_narratives=tuple(narrative.text for narrative in report.customer_narratives),
        c2_highlights=report.c2.lines if report.c2 is not None else (),
        trace_url=trace_url(grafana_url, trace_id),
        dashboards=tuple(
            Link(label=name, url=url) for name, url in dashboards.items() if name != OPPORTUNITIES_DASHBOARD
        ),
    )
