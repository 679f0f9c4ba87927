"""Backtest, choice and forecast per series: metrics with zero actuals, fallbacks, intervals."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import polars as pl
import pytest

from syno_forecast import fitting
from syno_forecast.backtest import (
    CandidateResult,
    HoldoutMetrics,
    QuarterForecast,
    evaluate,
    holdout_metrics,
)
from syno_forecast.candidates import ModelForecast, ModelName
from syno_forecast.series import QuarterlySeries, build_quarterly_series
from syno_shared.quarters import add_quarters

START = date(2022, 1, 1)
# Cheap candidates keep the suite fast; ETS/Theta run where the behaviour needs them.
BASELINES = ["seasonal_naive", "drift"]


def quarterly(values: list[float], series_id: str = "s", actual_to_date: float | None = None) -> QuarterlySeries:
    return QuarterlySeries(series_id, START, tuple(float(value) for value in values), actual_to_date, 0)


def array(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


# ---------------------------------------------------------------- metrics, hand-computed


def test_zero_actual_makes_mape_undefined_and_smape_counts_it_fully() -> None:
    # errors |0-5| = 5 and |10-8| = 2; sMAPE points 200*5/5 = 200 and 200*2/18 = 22.22; MASE scale at lag 4:
    # training 2,4,6,8,4,6 -> |4-2| and |6-4| = 2 -> mean error 3.5 / 2 = 1.75.
    metrics = holdout_metrics(array(0, 10), array(5, 8), array(2, 4, 6, 8, 4, 6))
    assert metrics.model_dump() == {
        "horizon": 2,
        "mape": None,
        "smape": pytest.approx((200 + 400 / 18) / 2),
        "mase": 1.75,
        "mase_season": 4,
        "notes": ("MAPE undefined: a held-out actual is zero",),
    }


def test_zero_forecast_of_zero_actual_scores_zero_smape() -> None:
    metrics = holdout_metrics(array(0), array(0), array(1, 3))
    assert metrics == HoldoutMetrics(
        horizon=1, mape=None, smape=0.0, mase=0.0, mase_season=1, notes=("MAPE undefined: a held-out actual is zero",)
    )


def test_mape_and_mase_on_nonzero_actuals() -> None:
    # |100-90| / 100 = 10 %; sMAPE 200*10/190; training 10,20,30,40,20 -> lag-4 scale |20-10| = 10 -> MASE 1.
    metrics = holdout_metrics(array(100), array(90), array(10, 20, 30, 40, 20))
    assert metrics.model_dump() == {
        "horizon": 1,
        "mape": pytest.approx(10.0),
        "smape": pytest.approx(2000 / 190),
        "mase": pytest.approx(1.0),
        "mase_season": 4,
        "notes": (),
    }


def test_flat_training_part_gives_no_mase() -> None:
    metrics = holdout_metrics(array(6), array(5), array(5, 5, 5))
    assert (metrics.mase, metrics.notes) == (None, ("MASE undefined: the training part does not change at lag 1",))


# ---------------------------------------------------------------- choice and fallbacks


def test_exact_seasonal_pattern_chooses_seasonal_naive_and_forecasts_the_next_value() -> None:
    result = evaluate(quarterly([10, 20, 30, 40] * 3), models=["seasonal_naive", "drift", "ets"])
    assert (result.model, result.forecasts) == (
        "seasonal_naive",
        (
            QuarterForecast(
                target_quarter=date(2025, 1, 1), point=10.0, lower_80=10.0, upper_80=10.0, lower_95=10.0, upper_95=10.0
            ),
        ),
    )
    # ETS fits the pattern exactly too: equal sMAPE, no MASE (flat seasonal differences) -> the simpler model.
    assert "tied on sMAPE and MASE, simpler model kept" in result.reason
    assert result.baseline_smape == 0.0


def test_horizon_scales_the_holdout_and_the_forecast() -> None:
    result = evaluate(quarterly([10, 20, 30, 40] * 4), horizon=4, models=BASELINES)
    assert result.model == "seasonal_naive"
    assert [row.point for row in result.forecasts] == [10.0, 20.0, 30.0, 40.0]
    assert [row.target_quarter for row in result.forecasts] == [
        date(2026, 1, 1),
        date(2026, 4, 1),
        date(2026, 7, 1),
        date(2026, 10, 1),
    ]
    assert result.metrics is not None and result.metrics.horizon == 4


def test_all_zero_series_gets_a_zero_forecast_with_reason() -> None:
    result = evaluate(quarterly([0] * 8))
    assert (result.model, result.reason, result.metrics, [row.point for row in result.forecasts]) == (
        "zero",
        "all 8 complete quarters are zero: zero forecast",
        None,
        [0.0],
    )


def test_short_series_falls_back_to_naive_and_mean() -> None:
    result = evaluate(quarterly([5, 6, 7]))
    assert result.model == "naive"
    assert result.reason.startswith("no requested model can run on 2 quarters: fell back to naive and mean")
    assert [(candidate.model, candidate.status) for candidate in result.candidates] == [
        ("naive", "evaluated"),
        ("mean", "evaluated"),
        ("combination", "ineligible"),
        ("combination_median", "ineligible"),
    ]
    assert result.forecasts[0].point == 7.0


def test_single_quarter_cannot_be_backtested_but_still_gets_a_forecast() -> None:
    result = evaluate(quarterly([5]))
    not_run = "not backtested: only 1 complete quarter(s) for horizon 1"
    assert (result.model, result.metrics, result.candidates) == (
        "naive",
        None,
        (
            CandidateResult(model="combination", status="ineligible", detail=not_run),
            CandidateResult(model="combination_median", status="ineligible", detail=not_run),
        ),
    )
    assert result.reason == "only 1 complete quarter(s) for horizon 1; no backtest possible, naive used as the fallback"
    assert result.forecasts[0].point == 5.0


def test_fewer_than_two_seasons_fits_ets_without_seasonality() -> None:
    result = evaluate(quarterly([10, 12, 11, 13, 12, 14, 13, 15]), models=["ets"])
    [ets] = result.candidates
    assert (result.model, ets.status, ets.detail) == (
        "ets",
        "evaluated",
        "AutoETS -> ETS(A,N,N) (no seasonality tried: fewer than 8 quarters)",  # 7 training quarters
    )
    assert "no seasonality tried" not in result.description  # the refit has 8 quarters


def test_intermittent_series_uses_croston_or_mean_and_says_why() -> None:
    result = evaluate(quarterly([0, 3, 0, 0, 5, 0, 2, 0, 0, 4]), models=["seasonal_naive", "ets", "combination"])
    assert result.model in {"croston", "mean", "seasonal_naive"}
    assert result.reason.startswith("intermittent series (6 of 9 quarters are zero (ADI 3.00))")
    assert {candidate.model: candidate.status for candidate in result.candidates} == {
        "seasonal_naive": "evaluated",
        "croston": "evaluated",
        "mean": "evaluated",
        "ets": "ineligible",
        "combination": "ineligible",
    }
    assert result.forecasts[0].lower_95 >= 0.0  # non-negative history -> non-negative bounds


def test_activity_only_in_the_holdout_skips_the_backtest() -> None:
    result = evaluate(quarterly([0, 0, 0, 0, 0, 9]))
    assert result.metrics is None
    assert result.reason.startswith("activity starts inside the 1 held-out quarter(s); training part is zero")
    assert result.forecasts[0].point > 0.0


def test_a_failing_model_is_recorded_and_the_series_still_gets_a_forecast(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise np.linalg.LinAlgError("singular matrix")

    monkeypatch.setattr(fitting, "_fit_statsforecast", broken)
    result = evaluate(quarterly([10, 12, 15, 11, 11, 13, 16, 12, 12]), models=["ets", "theta"])
    assert result.model in {"naive", "mean"}
    assert "every candidate failed: fell back to naive and mean" in result.reason
    assert {
        candidate.model: (candidate.status, candidate.detail)
        for candidate in result.candidates
        if candidate.status == "failed"
    } == {
        "ets": ("failed", "LinAlgError: singular matrix"),
        "theta": ("failed", "LinAlgError: singular matrix"),
    }


def test_a_combination_drops_a_failed_member_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    real = fitting._fit_statsforecast

    def ets_breaks(name: ModelName, history: np.ndarray, horizon: int, **options: Any) -> ModelForecast:
        if name is ModelName.ETS:
            raise ZeroDivisionError("float division by zero")
        return real(name, history, horizon, **options)

    monkeypatch.setattr(fitting, "_fit_statsforecast", ets_breaks)
    result = evaluate(quarterly([10, 12, 15, 11, 11, 13, 16, 12, 12, 14]), models=["combination"])
    assert result.model == "combination"
    assert result.description.startswith("mean of AutoTheta -> ")
    assert result.description.endswith("; seasonal naive (K=4)")
    assert result.notes == ("member ets left out: ZeroDivisionError: float division by zero",)


def test_unknown_model_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        evaluate(quarterly([1, 2, 3]), models=["prophet"])


@pytest.mark.parametrize(
    "values",
    [
        [100, 120, 90, 130, 105, 125, 95, 140, 110, 128],
        [10, -5, 12, 8, 9, 11, -2, 10, 3],
        [0, 0, 1, 0, 0, 0, 2, 0, 5],
        [3, 3, 3, 3, 3, 3, 3, 3],
        [1e6, 2e6, 1.5e6, 3e6, 1.2e6, 2.2e6, 1.4e6, 3.3e6, 1.1e6],
    ],
)
def test_interval_bounds_are_always_ordered(values: list[float]) -> None:
    result = evaluate(quarterly(values), horizon=2)
    for row in result.forecasts:
        assert row.lower_95 <= row.lower_80 <= row.point <= row.upper_80 <= row.upper_95
    if min(values) >= 0:
        assert all(row.lower_95 >= 0 for row in result.forecasts)


# ---------------------------------------------------------------- from the long frame


def test_partial_quarter_is_never_trained_on() -> None:
    history = [
        ("a", add_quarters(date(2023, 1, 1), step), float(value)) for step, value in enumerate([10, 20, 30, 40] * 2)
    ]
    rows = [*history, ("a", date(2025, 1, 1), 1_000_000.0)]
    long = pl.DataFrame(rows, schema={"series_id": pl.String, "quarter": pl.Date, "value": pl.Float64}, orient="row")
    [series] = build_quarterly_series(long, last_complete_quarter=date(2024, 10, 1))
    result = evaluate(series, models=BASELINES)
    assert (result.history_quarters, result.actual_to_date, result.model) == (8, 1_000_000.0, "seasonal_naive")
    assert [(row.target_quarter, row.point) for row in result.forecasts] == [(date(2025, 1, 1), 10.0)]
