"""Fitting: the engine's direct statsforecast calls and one-line baselines give darts' numbers; the backtest's
points-only fits and the re-estimated forms of long series change no point the backtest scores."""

from __future__ import annotations

import warnings
from datetime import date

import numpy as np
import pandas as pd
import pytest

from syno_forecast.backtest import evaluate
from syno_forecast.candidates import QUANTILES, ModelName
from syno_forecast.fitting import REUSE_FORM_MIN_LENGTH, fit_candidates, fit_model
from syno_forecast.series import QuarterlySeries

START = date(2020, 1, 1)
SHORT = np.array([10, 12, 15, 11, 11, 13, 16, 12, 12, 14], dtype=np.float64)
LONG = np.array([100 + 3 * step + (12, -5, 20, -9)[step % 4] + (7 * step) % 5 for step in range(26)], dtype=np.float64)


def darts_forecast(name: ModelName, history: np.ndarray, horizon: int) -> np.ndarray:
    """The same model through darts, as the engine ran it before: (horizon, quantiles) or (horizon,)."""
    with warnings.catch_warnings():  # the engine records fit warnings as notes; here they are not the point
        warnings.simplefilter("ignore")
        return _darts_forecast(name, history, horizon)


def _darts_forecast(name: ModelName, history: np.ndarray, horizon: int) -> np.ndarray:
    from darts import TimeSeries
    from darts.models import AutoCES, AutoETS, AutoTheta, Croston, NaiveDrift, NaiveMean, NaiveSeasonal

    series = TimeSeries.from_times_and_values(
        pd.date_range(pd.Timestamp(START), periods=len(history), freq="QS"), history.reshape(-1, 1)
    )
    searching = {ModelName.ETS: AutoETS, ModelName.THETA: AutoTheta, ModelName.CES: AutoCES}
    if name in searching:
        season = 4 if len(history) >= 8 else 1
        model = searching[name](season_length=season, quantiles=list(QUANTILES))
        model.fit(series)
        values = model.predict(horizon, predict_likelihood_parameters=True).values()
        return np.asarray(values, dtype=np.float64).reshape(horizon, len(QUANTILES))
    baselines = {
        ModelName.NAIVE: lambda: NaiveSeasonal(K=1),
        ModelName.SEASONAL_NAIVE: lambda: NaiveSeasonal(K=4),
        ModelName.DRIFT: NaiveDrift,
        ModelName.MEAN: NaiveMean,
        ModelName.CROSTON: lambda: Croston(version="sba", min_train_length=3),
    }
    baseline = baselines[name]()
    baseline.fit(series)
    return np.asarray(baseline.predict(horizon).values(), dtype=np.float64).reshape(horizon)


@pytest.mark.parametrize(
    ("name", "history"),
    [
        (ModelName.ETS, SHORT),
        (ModelName.THETA, SHORT),
        (ModelName.ETS, LONG),
        (ModelName.THETA, LONG),
    ],
)
def test_statsforecast_models_give_the_numbers_darts_gave(name: ModelName, history: np.ndarray) -> None:
    fitted = fit_model(name, history, 3)
    assert fitted.quantiles is not None
    np.testing.assert_allclose(fitted.quantiles, darts_forecast(name, history, 3), rtol=1e-9)
    np.testing.assert_allclose(fitted.point, fitted.quantiles[:, QUANTILES.index(0.5)], rtol=0)


def test_ces_gives_darts_point_and_intervals_within_simulation_noise() -> None:
    """CES's intervals come from 5,000 simulated paths; the engine simulates the same model with the same seed
    but draws only the errors it uses, so its quantiles are another sample: each within 5% of the 95% interval's
    width of statsforecast's own, and the point is the same."""
    fitted = fit_model(ModelName.CES, LONG, 8)
    theirs = darts_forecast(ModelName.CES, LONG, 8)
    assert fitted.quantiles is not None
    np.testing.assert_allclose(fitted.point, theirs[:, QUANTILES.index(0.5)], rtol=1e-9)
    width = (theirs[:, -1] - theirs[:, 0])[:, None]
    assert np.max(np.abs(fitted.quantiles - theirs) / width) < 0.05
    assert np.all(np.diff(fitted.quantiles, axis=1) >= 0)


@pytest.mark.parametrize(
    "name", [ModelName.NAIVE, ModelName.SEASONAL_NAIVE, ModelName.DRIFT, ModelName.MEAN, ModelName.CROSTON]
)
def test_baselines_give_the_points_darts_gave(name: ModelName) -> None:
    history = np.array([0, 3, 0, 0, 5, 0, 2, 0, 4], dtype=np.float64) if name is ModelName.CROSTON else SHORT
    np.testing.assert_allclose(fit_model(name, history, 6).point, darts_forecast(name, history, 6), rtol=1e-12)


def test_points_only_fits_have_the_same_points_and_no_intervals() -> None:
    """The backtest's fits skip intervals (CES would simulate 5,000 paths); a combination of them has none."""
    names = [ModelName.COMBINATION, ModelName.ETS, ModelName.THETA, ModelName.CES, ModelName.SEASONAL_NAIVE]
    points_only = fit_candidates(names, LONG, 4, intervals=False)
    full = fit_candidates(names, LONG, 4)
    assert sorted(points_only.forecasts) == sorted(full.forecasts)
    for name, forecast in points_only.forecasts.items():
        np.testing.assert_allclose(forecast.point, full.forecasts[name].point, rtol=1e-12)
        if name is not ModelName.SEASONAL_NAIVE:  # the baselines' normal intervals cost nothing and stay
            assert forecast.quantiles is None, name
        assert full.forecasts[name].quantiles is not None


def test_a_long_series_refits_the_form_its_training_part_chose() -> None:
    """With a training part of at least four seasons the final ETS is the training part's form, re-estimated on
    every quarter (not searched again); a short series is searched again."""
    assert len(LONG) - 1 >= REUSE_FORM_MIN_LENGTH > len(SHORT) - 1
    result = evaluate(QuarterlySeries("long", START, tuple(LONG), None, 0), models=["ets"])
    training_fit = fit_model(ModelName.ETS, LONG[:-1], 1, intervals=False)
    assert training_fit.form is not None
    refit = fit_model(ModelName.ETS, LONG, 1, form=training_fit.form)
    assert result.description == refit.description
    assert result.description.endswith("(form chosen on the training part, re-estimated)")
    assert result.forecasts[0].point == pytest.approx(float(refit.point[0]), rel=1e-12)

    short = evaluate(QuarterlySeries("short", START, tuple(SHORT), None, 0), models=["ets"])
    assert short.description == fit_model(ModelName.ETS, SHORT, 1).description
    assert "form chosen" not in short.description


def test_a_form_that_fails_on_the_full_history_falls_back_to_a_search() -> None:
    """A multiplicative form cannot be re-estimated once a zero appears; the search runs and says so."""
    positive = LONG[:-1]
    form = {"season_length": 4, "model": "MAM", "damped": False}
    with_zero = np.append(positive, 0.0)
    fitted = fit_model(ModelName.ETS, with_zero, 2, form=form)
    searched = fit_model(ModelName.ETS, with_zero, 2)
    np.testing.assert_allclose(fitted.point, searched.point, rtol=1e-12)
    assert any(note.startswith("the training part's form failed on this history") for note in fitted.notes)
