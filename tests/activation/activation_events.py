"""Sample events and run summaries shared by the summary, rendering, delivery and report tests.

SUMMARY_TITLE and SUMMARY_BODY are SUMMARY as people should read it, written by hand.
"""

from __future__ import annotations

from datetime import date

from syno_activation.accuracy import AccuracyDrop
from syno_activation.summary import Link, RunSummary
from syno_shared.events import (
    CohortForecast,
    ForecastPublished,
    PipelineFailed,
    QualityFacts,
    QualityGateResult,
    SnapshotDelta,
    TierForecast,
    UnconvertibleValue,
    UnmappedValue,
    WorkbookFacts,
)

SNAPSHOT = "9a8b7c6d5e4f" + "0" * 52

WORKBOOK = WorkbookFacts(
    file_name="sellout_2025*.xlsx",
    size_bytes=12_300_000,
    sheet_rows={"2025": 120_000, "2025-C2": 3_456, "2026": 10},
    delta=SnapshotDelta(
        is_first=False,
        previous_snapshot_id="1" * 64,
        size_bytes=400_000,
        sheets_added=["2026"],
        sheets_removed=["2023-C2"],
        rows={"2025": 1_200, "2025-C2": -34},
        columns_added={"2025": ["Region", "Sales_Rep"]},
        columns_removed={"2025-C2": ["Comments"]},
    ),
)
QUALITY = QualityFacts(
    rows_loaded=123_456,
    tests_passed=120,
    tests_warned=2,
    tests_failed=0,
    quality_gates=[
        QualityGateResult(name="unmapped_products", severity="warn", passed=False),
        QualityGateResult(name="row_count", severity="error", passed=True),
    ],
    unmapped_values=[
        UnmappedValue(field="product", value="RS<b>99</b>", rows=40),
        UnmappedValue(field="country", value="Atlantis", rows=3),
        UnmappedValue(field="currency", value="XXX", rows=1),
    ],
    unconvertible_values=[UnconvertibleValue(column="invoice_date", value="31/02/2025", rows=2)],
)

SUMMARY = RunSummary(
    run_id="run-42",
    snapshot_id=SNAPSHOT,
    workbook=WORKBOOK,
    quality=QUALITY,
    top_unmapped=tuple(QUALITY.unmapped_values[:2]),
    top_unconvertible=tuple(QUALITY.unconvertible_values),
    target_quarter=date(2025, 10, 1),
    cohorts=(
        CohortForecast(cohort="overall", series_count=6, holdout_mape=11.0, holdout_smape=12.3,
                       baseline_smape=15.0, threshold_smape=25.0, is_threshold_met=True),
        CohortForecast(cohort="customer", series_count=20, holdout_mape=40.0, holdout_smape=41.5,
                       baseline_smape=38.2, threshold_smape=30.0, is_threshold_met=False),
    ),
    accuracy_drops=(AccuracyDrop("overall", 12.3, 5.0, date(2025, 7, 1), 5.0),),
    headlines=("SVR-RM T1: $1,200,000 (80%: $1,000,000 to $1,400,000), ets",),
    narrated_quarter=date(2025, 7, 1),
    opportunities=("FR / SVR-RM buyer: Cross-sell C2 to 3 SVR-RM buyers without C2. $21.0K at stake, "
                   "medium confidence. Accounts: *Acme*, Dune, Hugo.",),
    opportunity_count=4,
    opportunities_link=Link("opportunities", "http://metabase.local/dashboard/9"),
    trace_url="http://grafana.local/explore?trace=abc",
    dashboards=(Link("Sell-out", "http://metabase.local/dashboard/3"),),
)  # fmt: skip

SUMMARY_TITLE = "syno: forecasts for Q4 2025 from sellout_2025*.xlsx (1 cohort flagged)"
SUMMARY_BODY = """\
**Top opportunities (Q3 2025)**:
1. FR / SVR-RM buyer: Cross-sell C2 to 3 SVR-RM buyers without C2. $21.0K at stake, medium confidence. \
Accounts: \\*Acme\\*, Dune, Hugo.
All 4 opportunities of Q3 2025, with their accounts: [opportunities](http://metabase.local/dashboard/9)

**Workbook**: sellout_2025\\*.xlsx, 12.3 MB (+0.4 MB), 123,456 rows loaded.
Rows per sheet: 2025 120,000 (+1,200), 2025-C2 3,456 (-34), 2026 10 (new).
Since the previous snapshot: sheets added: 2026; sheets removed: 2023-C2; columns added: 2025: Region, \
Sales_Rep; columns removed: 2025-C2: Comments.
Snapshot `9a8b7c6d5e4f`, run `run-42`. Published: the dashboards show this snapshot.

**Quality**: dbt tests 120 passed, 2 warned, 0 failed; gates warned: unmapped_products.

**Unmapped values (add them to the mapping tables)**:
- product "RS\\<b\\>99\\</b\\>": 40 rows
- country "Atlantis": 3 rows
- and 1 more

**Unconvertible cells (loaded as empty)**:
- invoice_date "31/02/2025": 2 rows

**Forecast (Q4 2025)**:
- SVR-RM T1: $1,200,000 (80%: $1,000,000 to $1,400,000), ets
- overall: 6 series, sMAPE 12.3% (seasonal naive 15.0%)
- customer: 20 series, sMAPE 41.5% (seasonal naive 38.2%) **FLAGGED**: above the 30.0% limit
- overall: accuracy got worse, sMAPE 12.3% against 5.0% in the previous published run (forecast for Q3 2025), \
more than the 5.0-point margin

[Trace in Grafana](http://grafana.local/explore?trace=abc) · [Sell-out](http://metabase.local/dashboard/3)"""

FAILURE = PipelineFailed(
    run_id="run-43",
    snapshot_id=SNAPSHOT,
    stage="transform",
    reason_code="dbt_test_failed",
    message="dbt test unique_sellout_quarterly failed: 3 duplicate rows.",
    is_retryable=False,
    input_reference="workbook.landed:" + SNAPSHOT,
)

ALERT_BODY = f"""\
dbt test unique_sellout_quarterly failed: 3 duplicate rows.

- Stage: transform
- Reason: `dbt_test_failed`
- Retryable: no
- Input: `workbook.landed:{SNAPSHOT}`
- Snapshot `9a8b7c6d5e4f`, run `run-43`

[Trace in Grafana](http://grafana.local/t/1)"""


EVENT_SNAPSHOT = "c0ffee" + "0" * 58

# rows per value: 7 unmapped values, the five most frequent are 90, 70, 50, 30 and 20 rows.
UNMAPPED = [
    UnmappedValue(field="product", value="DS-1", rows=20),
    UnmappedValue(field="country", value="Atlantis", rows=90),
    UnmappedValue(field="currency", value="XXX", rows=5),
    UnmappedValue(field="product", value="RS-2", rows=70),
    UnmappedValue(field="product", value="RS-3", rows=10),
    UnmappedValue(field="country", value="Narnia", rows=50),
    UnmappedValue(field="product", value="FS-4", rows=30),
]


def forecast_event() -> ForecastPublished:
    return ForecastPublished(
        run_id="run-7",
        snapshot_id=EVENT_SNAPSHOT,
        forecast_run_id="forecast-7",
        target_quarter=date(2025, 10, 1),
        cohorts=[
            CohortForecast(cohort="overall", series_count=4, holdout_mape=9.0, holdout_smape=10.0,
                           baseline_smape=12.0, threshold_smape=25.0, is_threshold_met=True),
        ],
        tiers=[
            TierForecast(tier="TOTAL", metric="revenue_usd", point=900_000.0, model="ets"),
            TierForecast(tier="T2", metric="revenue_usd", point=300_000.0, lower_80=250_000.0, upper_80=350_000.0,
                         model="theta"),
            TierForecast(tier="T1", metric="revenue_usd", point=500_000.0, model="naive"),
            TierForecast(tier="T1", metric="quantity", point=42.0, model="naive"),
        ],
        tables=["forecast.svr_rm"],
        workbook=WorkbookFacts(
            file_name="sellout.xlsx",
            size_bytes=2_000_000,
            sheet_rows={"2025": 1_000},
            delta=SnapshotDelta(is_first=True),
        ),
        quality=QualityFacts(
            rows_loaded=1_000,
            tests_passed=10,
            tests_warned=0,
            tests_failed=0,
            unmapped_values=UNMAPPED,
            unconvertible_values=[
                UnconvertibleValue(column="quantity", value="ten", rows=1),
                UnconvertibleValue(column="invoice_date", value="2025-13-01", rows=4),
            ],
        ),
    )  # fmt: skip
