"""Holdout accuracy per cohort: averages over the defined metrics, thresholds, the cohort read from the series id."""

from __future__ import annotations

from datetime import date

from syno_forecast.backtest import CandidateResult, HoldoutMetrics, QuarterForecast, SeriesForecast
from syno_forecast.cohorts import CohortMetrics, summarise_cohorts
from syno_forecast.tables import to_frame

TARGET = date(2025, 1, 1)


def scored(series_id: str, mape: float | None, smape: float | None, mase: float | None) -> SeriesForecast:
    metrics = None if smape is None else HoldoutMetrics(horizon=1, mape=mape, smape=smape, mase=mase, mase_season=4)
    return SeriesForecast(
        series_id=series_id,
        model="naive",
        description="naive",
        reason="test",
        interval_method="test",
        history_quarters=8,
        actual_to_date=None,
        metrics=metrics,
        baseline_smape=None if smape is None else 2 * smape,
        forecasts=(QuarterForecast(target_quarter=TARGET, point=1, lower_80=0, upper_80=2, lower_95=0, upper_95=3),),
        candidates=(CandidateResult(model="naive", status="evaluated", detail="naive", metrics=metrics),),
    )


def test_cohort_metrics_average_defined_values_and_check_thresholds() -> None:
    """Means and medians leave undefined metrics out (MAPE of t2, MASE of t3); a cohort with nothing
    backtested cannot meet its limit; the cohort is the series id's first part."""
    frame = to_frame(
        [
            scored("overall|T1|quantity", 10, 12, 0.5),
            scored("overall|T2|quantity", None, 30, 1.5),
            scored("overall|T3|quantity", 20, 18, None),
            scored("customer|Acme|quantity", None, None, None),
        ]
    )
    assert summarise_cohorts(frame, {"overall": 20.0, "customer": 50.0}) == [
        CohortMetrics(
            cohort="customer",
            series_count=1,
            backtested_count=0,
            mape_mean=None,
            mape_median=None,
            mape_count=0,
            smape_mean=None,
            smape_median=None,
            mase_mean=None,
            mase_median=None,
            baseline_smape_mean=None,
            threshold_smape=50.0,
            is_threshold_met=False,  # nothing backtested: the limit cannot be shown to hold
        ),
        CohortMetrics(
            cohort="overall",
            series_count=3,
            backtested_count=3,
            mape_mean=15.0,  # (10 + 20) / 2
            mape_median=15.0,
            mape_count=2,
            smape_mean=20.0,  # (12 + 30 + 18) / 3
            smape_median=18.0,
            mase_mean=1.0,  # (0.5 + 1.5) / 2
            mase_median=1.0,
            baseline_smape_mean=40.0,  # twice the sMAPE, by construction
            threshold_smape=20.0,
            is_threshold_met=True,
        ),
    ]


def test_a_cohort_without_a_threshold_always_meets_it_and_the_event_carries_the_summary() -> None:
    frame = to_frame([scored("overall|T1|quantity", 10, 12, 0.5), scored("c2|Cloud|revenue_usd", 5, 6, 0.2)])
    summaries = [summary.to_event() for summary in summarise_cohorts(frame, {"overall": 10.0})]
    assert [
        (summary.cohort, summary.series_count, summary.holdout_smape, summary.threshold_smape, summary.is_threshold_met)
        for summary in summaries
    ] == [
        ("c2", 1, 6.0, None, True),
        ("overall", 1, 12.0, 10.0, False),
    ]
