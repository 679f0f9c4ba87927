"""From the marts and forecasts of one small snapshot to the storyline rows and the summary people read.

The dataset is the one of test_storylines, test_narratives and test_c2_highlights (activation_samples):
every sentence below was worked out by hand from those frames, not by running the code.
"""

from __future__ import annotations

from datetime import date

import polars as pl
from activation_events import forecast_event
from activation_samples import (
    C2_CUSTOMERS,
    FORECAST,
    Q1,
    Q2,
    Q3,
    Q4,
    SVR_RM_CUSTOMERS,
    c2_scorecard,
    inputs,
    snapshot,
    snapshot_rows,
    svr_rm_rows,
)

from syno_activation.inputs import ActivationInputs
from syno_activation.rendering import summary_message
from syno_activation.report import build_report, narrated_quarter
from syno_activation.summary import build_run_summary

Q3_24, Q4_24 = date(2024, 7, 1), date(2024, 10, 1)
CUSTOMER_FORECASTS = pl.DataFrame(
    {"target_quarter": [Q4], "customer": ["Acme"], "forecast_revenue": [130_000.0], "lower_80": [110_000.0],
     "upper_80": [150_000.0]},
)  # fmt: skip
DASHBOARDS = {"opportunities": "http://metabase.local/dashboard/9", "Sell-out": "http://metabase.local/dashboard/3"}

# Edda bought 8K in Q3 2024 (the samples' snapshot plus its history), so DE's YoY is 15K / 8K - 1.
REGION_DE = (
    "DE in Q3 2025: revenue $15.0K (QoQ -50.0%, YoY +87.5%) from 2 active customers. "
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


# Q3 2025, worked by hand (the forecast targets Q4 2025):
# - FR / SVR-RM buyer (Acme 120K, Beta 30K, Dune 50K: 3 customers, material): Acme and Dune have no C2; FR's most
#   bought C2 plan in Q3 is Backup Advanced (busiest month 1 customer; 30K beats Storage Advanced's 10K): 2 x 30K
#   = 60K; 2 of FR's 3 SVR-RM buyers have C2 in the C2 sample. Beta fell 50K -> 30K: 20K to win back. FR's Q4
#   forecast 184K (interval up to 200K) is below FR's 230K: a 20% fall on Beta (6K) and Dune (10K); Acme is
#   judged on its own forecast (130K, up to 150K, above its 100K of SVR-RM): not at risk.
# - DE / Other (Edda, Fjord, Gala: material, 30K in Q2): Fjord 20K -> 10K and Gala 10K -> 5K: 15K to win back;
#   Edda dormant, trailing year 8K + 0 + 0 + 0: 2K, last order Q3 2024.
# - FR / Desktop only (Cielo alone: anecdotal): grows 20K -> 30K; the median T1 buyer (Acme) spent 100K on T1:
#   100K to upsell; and 6K (20% of 30K) to protect.
# Ranked: 60K, 20K, 16K, 15K, 2K, then the anecdotal 100K and 6K: 7 opportunities.
OPPORTUNITIES = (
    "FR / SVR-RM buyer: Cross-sell C2 Backup Advanced to 2 SVR-RM buyers without C2 (66.7% of FR SVR-RM buyers "
    "have C2). $60.0K at stake, medium confidence. Accounts: Acme, Dune.",
    "Beta (FR / SVR-RM buyer): Win back 1 declining account: -$20.0K (-40.0%) vs Q2 2025. $20.0K at stake, "
    "high confidence.",
    "FR / SVR-RM buyer: Protect the Q4 2025 pipeline of 2 accounts: forecast -$16.0K vs Q3 2025. $16.0K at stake, "
    "medium confidence. Accounts: Dune, Beta.",
    "DE / Other: Win back 2 declining accounts: -$15.0K (-50.0%) vs Q2 2025. $15.0K at stake, high confidence. "
    "Accounts: Fjord, Gala.",
    "Edda (DE / Other): Re-engage 1 dormant account: last order Q3 2024. $2.0K at stake, high confidence.",
)


def report_inputs() -> ActivationInputs:
    edda = [(quarter, "DE", "Edda", "Other", revenue, None, None, False, signal)
            for quarter, revenue, signal in ((Q3_24, 8_000.0, "new"), (Q4_24, 0.0, "decline"), (Q1, 0.0, "steady"),
                                             (Q2, 0.0, "steady"))]  # fmt: skip
    region_forecasts = FORECAST.with_columns(
        lower_80=pl.Series([170_000.0, 230_000.0]), upper_80=pl.Series([200_000.0, 270_000.0])
    )
    svr_rm = svr_rm_rows([(Q2, "Acme", "T1", 2, 80_000.0), (Q2, "Beta", "T2", 1, 40_000.0),
                          (Q3, "Acme", "T1", 2, 100_000.0), (Q3, "Dune", "T2", 1, 50_000.0)])  # fmt: skip
    return inputs(
        pl.concat([snapshot_rows(edda), snapshot()]),
        region_forecasts=region_forecasts,
        customer_forecasts=CUSTOMER_FORECASTS,
        c2_scorecard_frame=c2_scorecard(),
        svr_rm_customers=SVR_RM_CUSTOMERS,
        c2_customers=C2_CUSTOMERS,
        svr_rm_revenue=svr_rm,
    )


def test_the_summary_leads_with_the_top_opportunities_then_narratives_c2_and_the_data_facts() -> None:
    """Forecast for Q4 2025, so Q3 2025 (the latest complete quarter) is the one told; asserted whole."""
    report = build_report(report_inputs(), target_quarter=Q4)
    summary = build_run_summary(
        forecast=forecast_event(), report=report, grafana_url="http://g", trace_id=None, dashboards=DASHBOARDS
    )
    message = summary_message(summary)

    assert message.title == "syno: forecasts for Q4 2025 from sellout.xlsx"
    assert message.body == "\n".join(
        [
            "**Top opportunities (Q3 2025)**:",
            *[f"{number}. {line}" for number, line in enumerate(OPPORTUNITIES, start=1)],
            "All 7 opportunities of Q3 2025, with their accounts: [opportunities](http://metabase.local/dashboard/9)",
            "",
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
            "**Workbook**: sellout.xlsx, 2.0 MB, 1,000 rows loaded.",
            "Rows per sheet: 2025 1,000.",
            "First snapshot: nothing to compare with.",
            "Snapshot `c0ffee000000`, run `run-7`. Published: the dashboards show this snapshot.",
            "",
            "**Quality**: dbt tests 10 passed, 0 warned, 0 failed; all quality gates passed.",
            "",
            "**Unmapped values (add them to the mapping tables)**:",
            '- country "Atlantis": 90 rows',
            '- product "RS-2": 70 rows',
            '- country "Narnia": 50 rows',
            '- product "FS-4": 30 rows',
            '- product "DS-1": 20 rows',
            "- and 2 more",
            "",
            "**Unconvertible cells (loaded as empty)**:",
            '- invoice_date "2025-13-01": 4 rows',
            '- quantity "ten": 1 row',
            "",
            "**Forecast (Q4 2025)**:",
            "- SVR-RM T1: $500,000, naive",
            "- SVR-RM T2: $300,000 (80%: $250,000 to $350,000), theta",
            "- SVR-RM TOTAL: $900,000, ets",
            "- overall: 4 series, sMAPE 10.0% (seasonal naive 12.0%)",
            "",
            "[Sell-out](http://metabase.local/dashboard/3)",
        ]
    )
    assert (summary.opportunities, summary.opportunity_count) == (OPPORTUNITIES, 7)


def test_storyline_rows_carry_their_region_and_customer_narratives_for_the_narrated_quarter() -> None:
    """One row per lever; history has no narrative: Edda's 8K decline in Q4 2024, and Acme without C2 in Q2 2025
    (1 x 20K, FR's Backup Advanced in Q2)."""
    storylines = build_report(report_inputs(), target_quarter=Q4).storylines

    assert storylines.select(
        "quarter", "region", "segment", "lever", "region_narrative", "customer_narratives"
    ).rows() == [
        (Q4_24, "DE", "Other", "win_back", None, None),
        (Q2, "FR", "SVR-RM buyer", "cross_sell_c2", None, None),
        (Q3, "FR", "SVR-RM buyer", "cross_sell_c2", REGION_FR, f"{ACME}\n{DUNE}\n{BETA}"),
        (Q3, "FR", "SVR-RM buyer", "win_back", REGION_FR, f"{ACME}\n{DUNE}\n{BETA}"),
        (Q3, "FR", "SVR-RM buyer", "protect_pipeline", REGION_FR, f"{ACME}\n{DUNE}\n{BETA}"),
        (Q3, "DE", "Other", "win_back", REGION_DE, FJORD),
        (Q3, "DE", "Other", "re_engage", REGION_DE, FJORD),
        (Q3, "FR", "Desktop only", "upsell_rackmount", REGION_FR, CIELO),
        (Q3, "FR", "Desktop only", "protect_pipeline", REGION_FR, CIELO),
    ]


def test_the_narrated_quarter_is_the_one_before_the_target_else_the_latest_in_the_snapshot() -> None:
    assert narrated_quarter(date(2026, 1, 1), snapshot()) == date(2025, 10, 1)
    assert narrated_quarter(None, snapshot()) == Q3
    assert narrated_quarter(None, snapshot().clear()) is None


def test_an_empty_snapshot_gives_no_storylines_and_no_narratives() -> None:
    report = build_report(inputs(snapshot().clear()), target_quarter=None)

    assert (report.quarter, report.storylines.height, report.region_narratives, report.c2) == (None, 0, (), None)
    assert (report.opportunities, report.opportunity_count) == ((), 0)
    assert "region_narrative" in report.storylines.columns
