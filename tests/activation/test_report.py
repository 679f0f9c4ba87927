"""From the marts and forecasts of one small snapshot to the storyline rows and the summary people read.

The dataset is the one of test_storylines, test_narratives and test_c2_highlights (activation_samples):
every sentence below was worked out by hand from those frames, not by running the code.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from activation_events import forecast_event
from activation_samples import C2_CUSTOMERS, FORECAST, Q2, Q3, Q4, SVR_RM_CUSTOMERS, c2_scorecard, snapshot

from syno_activation.rendering import summary_message
from syno_activation.report import ActivationInputs, build_report, narrated_quarter
from syno_activation.summary import build_run_summary

CUSTOMER_FORECASTS = pl.DataFrame(
    {"target_quarter": [Q4], "customer": ["Acme"], "forecast_revenue": [130_000.0]},
)

REGION_DE = (
    "DE in Q3 2025: revenue $15.0K (QoQ -50.0%, YoY n/a) from 2 active customers. "
    "Accounts: 0 growing, 2 declining, 1 dormant, 0 new. Re-engage dormant: Edda. No forecast for Q4 2025."
)
REGION_FR = (
    "FR in Q3 2025: revenue $230.0K (QoQ +35.3%, YoY n/a) from 4 active customers. "
    "Accounts: 2 growing, 1 declining, 0 dormant, 1 new. Cross-sell: 2 SVR-RM buyers without C2 (Acme, Dune). "
    "Next quarter (Q4 2025) forecast $184.0K (-20.0% vs Q3 2025): forecast risk."
)
# Q3 revenue: Acme 120K, Dune 50K, Beta 30K and Cielo 30K (tie: by name), Fjord 10K; Gala 5K is sixth.
ACME = (
    "Acme (FR, SVR-RM buyer) in Q3 2025: revenue $120.0K (QoQ +20.0%, YoY n/a), growing. "
    "Buys SVR-RM without C2: cross-sell C2. Next quarter (Q4 2025) SVR-RM forecast $130.0K."
)
DUNE = (
    "Dune (FR, SVR-RM buyer) in Q3 2025: revenue $50.0K (QoQ n/a, YoY n/a), new account. "
    "Buys SVR-RM without C2: cross-sell C2."
)
BETA = "Beta (FR, SVR-RM buyer) in Q3 2025: revenue $30.0K (QoQ -40.0%, YoY n/a), declining."
CIELO = "Cielo (FR, Desktop only) in Q3 2025: revenue $30.0K (QoQ +50.0%, YoY n/a), growing."
FJORD = "Fjord (DE, Other) in Q3 2025: revenue $10.0K (QoQ -50.0%, YoY n/a), declining."

# C2 revenue Q3 = 30K + 60K + 10K = 100K vs 90K in Q2 (+11.1%); Backup 20K -> 30K; FR 20K -> 40K, DE 70K -> 60K;
# SVR-RM customers in Q3: A, B, C, D, E, of which A and C have C2 (2 of 5; Q2: 1 of 2 = 50%).
C2_LINES = (
    "C2 revenue in Q3 2025: $100.0K (QoQ +11.1%).",
    "Largest movers by service family: Backup +$10.0K (+50.0%).",
    "Largest movers by region: FR +$20.0K (+100.0%), DE -$10.0K (-14.3%).",
    "C2 attach rate among SVR-RM customers: 40.0% (2 of 5), -10.0 pts QoQ.",
    "C2 customers: 3 active, 1 new, 1 returning, 1 lost.",
)


def inputs() -> ActivationInputs:
    return ActivationInputs(
        snapshot=snapshot(),
        region_forecasts=FORECAST,
        customer_forecasts=CUSTOMER_FORECASTS,
        c2_scorecard=c2_scorecard(),
        svr_rm_customers=SVR_RM_CUSTOMERS,
        c2_customers=C2_CUSTOMERS,
    )


def test_the_summary_tells_region_and_top_customer_narratives_c2_highlights_and_storylines() -> None:
    """Forecast for Q4 2025, so Q3 2025 (the latest complete quarter) is narrated."""
    report = build_report(inputs(), target_quarter=Q4)
    summary = build_run_summary(
        forecast=forecast_event(), report=report, grafana_url="http://g", trace_id=None, dashboards={}
    )
    body = summary_message(summary).body

    assert summary.region_narratives == (REGION_DE, REGION_FR)
    assert summary.customer_narratives == (ACME, DUNE, BETA, CIELO, FJORD)
    assert summary.c2_highlights == C2_LINES
    stories = "\n".join(
        [
            "**Regions (Q3 2025)**:",
            f"- {REGION_DE}",
            f"- {REGION_FR}",
            "",
            "**Top customers (Q3 2025)**:",
            *[f"- {text}" for text in (ACME, DUNE, BETA, CIELO, FJORD)],
            "",
            "**C2 highlights**:",
            *[f"- {line}" for line in C2_LINES],
            "",
            "**Storylines (Q3 2025)**:",
            "- DE / Other: Win back declining accounts (score 23.3)",
            "- FR / SVR-RM buyer: Cross-sell C2 to SVR-RM buyers (score 20.7)",
            "- FR / Desktop only: Protect next-quarter pipeline (score 4.0)",
        ]
    )
    assert stories in body


def test_storyline_rows_carry_their_region_and_customer_narratives_for_the_narrated_quarter() -> None:
    storylines = build_report(inputs(), target_quarter=Q4).storylines

    assert storylines.select("quarter", "region", "segment", "region_narrative", "customer_narratives").rows() == [
        (Q2, "DE", "Other", None, None),
        (Q2, "FR", "Desktop only", None, None),
        (Q2, "FR", "SVR-RM buyer", None, None),
        (Q3, "DE", "Other", REGION_DE, FJORD),
        (Q3, "FR", "Desktop only", REGION_FR, CIELO),
        (Q3, "FR", "SVR-RM buyer", REGION_FR, f"{ACME}\n{DUNE}\n{BETA}"),
    ]


def test_the_narrated_quarter_is_the_one_before_the_target_else_the_latest_in_the_snapshot() -> None:
    assert narrated_quarter(date(2026, 1, 1), snapshot()) == date(2025, 10, 1)
    assert narrated_quarter(None, snapshot()) == Q3
    assert narrated_quarter(None, snapshot().clear()) is None


def test_an_empty_snapshot_gives_no_storylines_and_no_narratives() -> None:
    empty = ActivationInputs(
        snapshot=snapshot().clear(),
        region_forecasts=FORECAST.clear(),
        customer_forecasts=CUSTOMER_FORECASTS.clear(),
        c2_scorecard=c2_scorecard().clear(),
        svr_rm_customers=SVR_RM_CUSTOMERS.clear(),
        c2_customers=C2_CUSTOMERS.clear(),
    )
    report = build_report(empty, target_quarter=None)

    assert (report.quarter, report.storylines.height, report.region_narratives, report.c2) == (None, 0, (), None)
    assert "region_narrative" in report.storylines.columns
