"""The run summary people receive, assembled from the events and manifest of one run (pure)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from syno_activation.notify import CohortMetrics, Link, QualityHealth, RunSummary
from syno_shared.events import ForecastPublished, MartsReady


def trace_url(grafana_url: str, trace_id: str | None) -> str | None:
    """A Grafana Explore link opening the run's trace in Tempo."""
    if not trace_id:
        return None
    pane = {"datasource": "tempo", "queries": [{"refId": "A", "queryType": "traceql", "query": trace_id}]}
    return f"{grafana_url.rstrip('/')}/explore?left={quote(json.dumps(pane, separators=(',', ':')))}"


def quality_health(ready: MartsReady) -> QualityHealth:
    return QualityHealth(
        tests_passed=ready.tests_passed,
        tests_warned=ready.tests_warned,
        tests_failed=ready.tests_failed,
        gates_failed=tuple(g.name for g in ready.quality_gates if not g.passed and g.severity == "error"),
        gates_warned=tuple(g.name for g in ready.quality_gates if not g.passed and g.severity == "warn"),
    )


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


def build_run_summary(
    *,
    manifest: Mapping[str, Any] | None,
    ready: MartsReady | None,
    forecast: ForecastPublished,
    storylines: tuple[str, ...],
    grafana_url: str,
    trace_id: str | None,
    dashboards: Mapping[str, str],
) -> RunSummary:
    delta = (manifest or {}).get("delta") or {}
    rows_delta = sum(delta.get("rows", {}).values()) if delta.get("rows") else None
    return RunSummary(
        run_id=forecast.run_id,
        snapshot_id=forecast.snapshot_id,
        file_name=str((manifest or {}).get("file_name", "?")),
        rows_loaded=ready.rows_loaded if ready is not None else 0,
        rows_delta=rows_delta,
        size_bytes=(manifest or {}).get("size_bytes"),
        size_delta_bytes=delta.get("size_bytes"),
        quality=quality_health(ready) if ready is not None else None,
        target_quarter=forecast.target_quarter,
        cohorts=tuple(
            CohortMetrics(
                cohort=c.cohort,
                series_count=c.series_count,
                smape=c.holdout_smape,
                baseline_smape=c.baseline_smape,
                threshold_smape=c.threshold_smape,
                is_threshold_met=c.is_threshold_met,
            )
            for c in forecast.cohorts
        ),
        headlines=tier_headlines(forecast),
        storylines=storylines,
        trace_url=trace_url(grafana_url, trace_id),
        dashboards=tuple(Link(label=name, url=url) for name, url in dashboards.items()),
    )
