"""The run summary is built from the forecast.published event alone: file facts, quality facts, forecasts."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlsplit

import polars as pl
from activation_events import forecast_event

from syno_activation.rendering import summary_message
from syno_activation.report import ActivationReport
from syno_activation.summary import Link, build_run_summary, trace_url

EMPTY_REPORT = ActivationReport(
    quarter=None,
    storylines=pl.DataFrame(),
    region_narratives=(),
    customer_narratives=(),
    c2=None,
    opportunities=(),
)


def test_the_file_and_quality_facts_of_the_event_reach_people_with_the_five_most_frequent_unmapped_values() -> None:
    """The event lists 7 unmapped values (90, 70, 50, 30, 20, 10, 5 rows): the first five are named."""
    summary = build_run_summary(
        forecast=forecast_event(), report=EMPTY_REPORT, grafana_url="http://g", trace_id=None, dashboards={}
    )
    body = summary_message(summary).body

    assert body.startswith(
        "**Workbook**: sellout.xlsx, 2.0 MB, 1,000 rows loaded.\n"
        "Rows per sheet: 2025 1,000.\n"
        "First snapshot: nothing to compare with.\n"
    )
    assert (
        "**Unmapped values (add them to the mapping tables)**:\n"
        '- country "Atlantis": 90 rows\n'
        '- product "RS-2": 70 rows\n'
        '- country "Narnia": 50 rows\n'
        '- product "FS-4": 30 rows\n'
        '- product "DS-1": 20 rows\n'
        "- and 2 more\n"
        "\n"
        "**Unconvertible cells (loaded as empty)**:\n"
        '- invoice_date "2025-13-01": 4 rows\n'
        '- quantity "ten": 1 row\n'
    ) in body


def test_revenue_headlines_put_t1_first_and_the_total_last_and_skip_quantities() -> None:
    summary = build_run_summary(
        forecast=forecast_event(), report=EMPTY_REPORT, grafana_url="http://g", trace_id=None, dashboards={}
    )

    assert summary.headlines == (
        "SVR-RM T1: $500,000, naive",
        "SVR-RM T2: $300,000 (80%: $250,000 to $350,000), theta",
        "SVR-RM TOTAL: $900,000, ets",
    )


def test_the_trace_link_opens_the_run_trace_in_grafana_explore() -> None:
    link = trace_url("http://grafana.local/", "ab" * 16)

    assert link is not None
    parts = urlsplit(link)
    assert (parts.netloc, parts.path) == ("grafana.local", "/explore")
    [pane] = parse_qs(parts.query)["left"]
    assert '"query":"' + "ab" * 16 + '"' in pane
    assert trace_url("http://grafana.local", None) is None


def test_the_opportunities_dashboard_is_linked_with_the_opportunities_and_the_others_at_the_end() -> None:
    report = ActivationReport(
        quarter=date(2025, 7, 1),
        storylines=pl.DataFrame(),
        region_narratives=(),
        customer_narratives=(),
        c2=None,
        opportunities=("DE / Other: Win back 2 declining accounts. $15.0K at stake, high confidence.",),
        opportunity_count=3,
    )
    dashboards = {"Sell-out": "http://mb/dashboard/3", "opportunities": "http://mb/dashboard/9"}
    summary = build_run_summary(
        forecast=forecast_event(), report=report, grafana_url="http://g", trace_id=None, dashboards=dashboards
    )

    assert (summary.opportunities_link, summary.dashboards) == (
        Link("opportunities", "http://mb/dashboard/9"),
        (Link("Sell-out", "http://mb/dashboard/3"),),
    )
    body = summary_message(summary).body
    assert body.startswith(
        "**Top opportunities (Q3 2025)**:\n"
        "1. DE / Other: Win back 2 declining accounts. $15.0K at stake, high confidence.\n"
        "All 3 opportunities of Q3 2025, with their accounts: [opportunities](http://mb/dashboard/9)\n"
        "\n"
        "**Workbook**: "
    )
    assert body.endswith("\n\n[Sell-out](http://mb/dashboard/3)")

    unlinked = build_run_summary(
        forecast=forecast_event(), report=report, grafana_url="http://g", trace_id=None, dashboards={}
    )
    assert summary_message(unlinked).body.splitlines()[2] == (
        "All 3 opportunities of Q3 2025, with their accounts, are in activation.storylines."
    )
