"""The run summary is built from the forecast.published event alone: file facts, quality facts, forecasts."""

from __future__ import annotations

from datetime import date

import polars as pl

from syno_activation.report import ActivationReport
from syno_activation.summary import Link, build_run_summary
from syno_shared.events import (
    CohortForecast,
    ForecastPublished,
    QualityFacts,
    SnapshotDelta,
    TierForecast,
    UnconvertibleValue,
    UnmappedValue,
    WorkbookFacts,
)

SNAPSHOT = "c0ffee" + "0" * 58
EMPTY_REPORT = ActivationReport(
    quarter=None,
    storylines=pl.DataFrame(),
    region_narratives=(),
    customer_narratives=(),
    c2=None,
    headline_storylines=(),
)

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
        snapshot_id=SNAPSHOT,
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


def test_summary_lists_the_five_most_frequent_unmapped_values_and_the_unconvertible_cells() -> None:
    summary = build_run_summary(
        forecast=forecast_event(), report=EMPTY_REPORT, grafana_url="http://g", trace_id=None, dashboards={}
    )

    assert [(value.value, value.rows) for value in summary.top_unmapped] == [
        ("Atlantis", 90),
        ("RS-2", 70),
        ("Narnia", 50),
        ("FS-4", 30),
        ("DS-1", 20),
    ]
    assert [(value.column, value.rows) for value in summary.top_unconvertible] == [
        ("invoice_date", 4),
        ("quantity", 1),
    ]


def test_summary_carries_the_file_facts_and_the_revenue_headlines_t1_first_total_last() -> None:
    event = forecast_event()
    summary = build_run_summary(
        forecast=event,
        report=EMPTY_REPORT,
        grafana_url="http://grafana.local/",
        trace_id="ab" * 16,
        dashboards={"Sell-out": "http://metabase.local/dashboard/1"},
    )

    assert (summary.workbook, summary.quality, summary.target_quarter) == (
        event.workbook,
        event.quality,
        date(2025, 10, 1),
    )
    assert summary.headlines == (
        "SVR-RM T1: $500,000, naive",
        "SVR-RM T2: $300,000 (80%: $250,000 to $350,000), theta",
        "SVR-RM TOTAL: $900,000, ets",
    )
    assert summary.dashboards == (Link("Sell-out", "http://metabase.local/dashboard/1"),)
    assert summary.trace_url is not None
    assert summary.trace_url.startswith("http://grafana.local/explore?left=")
    assert "ab" * 16 in summary.trace_url
