"""Fitting one candidate model through darts, and every candidate of a series at once.

Models built on statsforecast (ETS, Theta, ARIMA, CES) give their own quantiles; the baselines and Croston
get a normal approximation on their in-sample one-step errors; combinations are built from the fitted
members (see ``combination``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from darts import TimeSeries
from darts.models import (
    AutoARIMA,
    AutoCES,
    AutoETS,
    AutoTheta,
    Croston,
    NaiveDrift,
    NaiveMean,
    NaiveSeasonal,
)

from syno_forecast.candidates import (
    COMBINATION_MEMBERS,
    COMBINATIONS,
    MIN_LENGTH,
    MODEL_ORDER,
    QUANTILES,
    SEASON_LENGTH,
    SEASONAL_MIN_LENGTH,
    FloatArray,
    ModelFitError,
    ModelForecast,
    ModelName,
    SeriesProfile,
    ineligibility,
)
from syno_forecast.combination import combine


def quarterly_timeseries(values: FloatArray, start: date) -> TimeSeries:
    """A darts series on a quarter-start index (``freq="QS"``, so gaps can never confuse inference)."""
    index = pd.date_range(pd.Timestamp(start), periods=len(values), freq="QS")
    return TimeSeries.from_times_and_values(index, values.astype(np.float64).reshape(-1, 1))


# ---------------------------------------------------------------- intervals for models without their own


def _normal_quantiles(point: FloatArray, sigma: float, spread: FloatArray) -> FloatArray:
    z = np.array([NormalDist().inv_cdf(q) for q in QUANTILES], dtype=np.float64)
    return np.asarray(point[:, None] + sigma * spread[:, None] * z[None, :], dtype=np.float64)


def _root_mean_square(errors: FloatArray) -> float | None:
    errors = errors[np.isfinite(errors)]
    if errors.size < 2:
        return None
    return float(np.sqrt(np.mean(errors**2)))


def _residual_intervals(
    point: FloatArray, residuals: FloatArray, spread: FloatArray, history: FloatArray
) -> tuple[FloatArray, str]:
    sigma = _root_mean_square(residuals)
    if sigma is None:
        # Too few errors to estimate a spread: use the series' own scale (mean absolute level), wide on purpose.
        sigma = float(np.mean(np.abs(history))) if history.size else 0.0
        return _normal_quantiles(point, sigma, spread), "normal approximation, sigma = mean |value| (too few errors)"
    return _normal_quantiles(point, sigma, spread), "normal approximation on in-sample one-step errors"


def _steps(horizon: int) -> FloatArray:
    return np.arange(1, horizon + 1, dtype=np.float64)


# ---------------------------------------------------------------- fitting


def _warning_notes(caught: Sequence[warnings.WarningMessage]) -> tuple[str, ...]:
    seen = dict.fromkeys(f"{item.category.__name__}: {item.message}" for item in caught)
    return tuple(f"warning during fit: {text}" for text in list(seen)[:3])


# darts' baselines refuse fewer than 3 points; below that the same rule is applied directly.
_DARTS_BASELINE_MIN_LENGTH = 3


def _baseline_point(name: ModelName, history: FloatArray, series: TimeSeries, horizon: int) -> FloatArray:
    if len(history) < _DARTS_BASELINE_MIN_LENGTH:
        if name is ModelName.MEAN:
            return np.full(horizon, float(history.mean()))
        if name is ModelName.NAIVE:
            return np.full(horizon, float(history[-1]))
        raise ModelFitError(f"{name} needs at least {_DARTS_BASELINE_MIN_LENGTH} quarters")
    model: Any
    if name is ModelName.NAIVE:
        model = NaiveSeasonal(K=1)
    elif name is ModelName.SEASONAL_NAIVE:
        model = NaiveSeasonal(K=SEASON_LENGTH)
    elif name is ModelName.DRIFT:
        model = NaiveDrift()
    elif name is ModelName.MEAN:
        model = NaiveMean()
    else:
        model = Croston(version="sba", min_train_length=MIN_LENGTH[ModelName.CROSTON])
    model.fit(series)
    return np.asarray(model.predict(horizon).values(copy=False), dtype=np.float64).reshape(horizon)


def _fit_baseline(name: ModelName, history: FloatArray, series: TimeSeries, horizon: int) -> ModelForecast:
    steps = _steps(horizon)
    length = len(history)
    if name is ModelName.ZERO:
        zeros = np.zeros(horizon)
        quantiles = np.zeros((horizon, len(QUANTILES)))
        return ModelForecast(name, "zero (all-zero history)", zeros, quantiles, "none (all zero)")
    point = _baseline_point(name, history, series, horizon)
    if name is ModelName.NAIVE:
        quantiles, method = _residual_intervals(point, np.diff(history), np.sqrt(steps), history)
        return ModelForecast(name, "naive (last value)", point, quantiles, method)
    if name is ModelName.SEASONAL_NAIVE:
        seasonal_errors = history[SEASON_LENGTH:] - history[:-SEASON_LENGTH]
        spread = np.sqrt(np.floor((steps - 1) / SEASON_LENGTH) + 1)
        quantiles, method = _residual_intervals(point, seasonal_errors, spread, history)
        return ModelForecast(name, f"seasonal naive (K={SEASON_LENGTH})", point, quantiles, method)
    if name is ModelName.DRIFT:
        changes = np.diff(history)
        spread = np.sqrt(steps * (1 + steps / max(length - 1, 1)))
        quantiles, method = _residual_intervals(point, changes - changes.mean(), spread, history)
        slope = float(changes.mean())
        return ModelForecast(name, f"naive with drift ({slope:+.4g} per quarter)", point, quantiles, method)
    spread = np.full(horizon, math.sqrt(1 + 1 / length))
    if name is ModelName.MEAN:
        quantiles, method = _residual_intervals(point, history - history.mean(), spread, history)
        return ModelForecast(name, f"mean of {length} quarters", point, quantiles, method)
    quantiles, method = _residual_intervals(point, history - point[0], spread, history)
    return ModelForecast(name, "Croston, Syntetos-Boylan approximation", point, quantiles, method)


def _describe_statsforecast(name: ModelName, fitted: Mapping[str, Any]) -> str:
    if name is ModelName.ETS:
        return f"AutoETS -> {fitted.get('method', '?')}"
    if name is ModelName.THETA:
        return f"AutoTheta -> {fitted.get('modeltype', '?')}"
    if name is ModelName.ARIMA:
        arma = fitted.get("arma")
        if arma is None:
            return "AutoARIMA"
        p, q, big_p, big_q, m, d, big_d = (int(x) for x in arma)
        return f"AutoARIMA -> ARIMA({p},{d},{q})({big_p},{big_d},{big_q})[{m}]"
    season = fitted.get("seasontype", "?")
    return f"AutoCES -> seasontype {season}"


_STATSFORECAST: Mapping[ModelName, Callable[..., Any]] = {
    ModelName.ETS: AutoETS,
    ModelName.THETA: AutoTheta,
    ModelName.ARIMA: AutoARIMA,
    ModelName.CES: AutoCES,
}


def _fit_statsforecast(name: ModelName, history: FloatArray, series: TimeSeries, horizon: int) -> ModelForecast:
    is_seasonal = len(history) >= SEASONAL_MIN_LENGTH
    model = _STATSFORECAST[name](
        season_length=SEASON_LENGTH if is_seasonal else 1,
        quantiles=list(QUANTILES),
        min_train_length=MIN_LENGTH[name],
    )
    model.fit(series)
    values = np.asarray(
        model.predict(horizon, predict_likelihood_parameters=True).values(copy=False), dtype=np.float64
    ).reshape(horizon, len(QUANTILES))
    if not np.all(np.isfinite(values)):
        raise ModelFitError(f"{name} produced non-finite forecasts")
    fitted = getattr(model.model, "model_", None)
    description = _describe_statsforecast(name, fitted if isinstance(fitted, dict) else {})
    if not is_seasonal:
        description += f" (no seasonality tried: fewer than {SEASONAL_MIN_LENGTH} quarters)"
    point = values[:, QUANTILES.index(0.5)].copy()
    return ModelForecast(name, description, point, values, "model (statsforecast prediction levels)")


def fit_model(name: ModelName, history: FloatArray, start: date, horizon: int) -> ModelForecast:
    """Fit one single (non-combination) model and forecast ``horizon`` quarters.

    Raises :class:`ModelFitError` with the library's message when fitting or forecasting fails.
    """
    if name in COMBINATIONS:
        raise ValueError(f"{name} is built from members with combine(), not fitted")
    series = quarterly_timeseries(history, start)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if name in _STATSFORECAST:
                result = _fit_statsforecast(name, history, series, horizon)
            else:
                result = _fit_baseline(name, history, series, horizon)
        except ModelFitError:
            raise
        # darts and statsforecast raise many unrelated types (ValueError, LinAlgError, the not-implemented error
        # for "tiny datasets", ZeroDivisionError...); each is recorded on the candidate, never swallowed.
        except Exception as error:
            raise ModelFitError(f"{type(error).__name__}: {error}") from error
    if not np.all(np.isfinite(result.quantiles)) or not np.all(np.isfinite(result.point)):
        raise ModelFitError(f"{name} produced non-finite forecasts or intervals")
    notes = result.notes + _warning_notes(caught)
    return ModelForecast(
        result.model, result.description, result.point, result.quantiles, result.interval_method, notes
    )


@dataclass(frozen=True, slots=True)
class FitOutcome:
    """Forecasts of the models that ran and the reason for each that did not."""

    forecasts: Mapping[ModelName, ModelForecast]
    failures: Mapping[ModelName, str]


def fit_candidates(names: Sequence[ModelName], history: FloatArray, start: date, horizon: int) -> FitOutcome:
    """Fit every model in ``names`` (members of a requested combination too) on ``history``.

    Members fitted only for a combination are reported in ``forecasts`` as well; callers pick what they
    asked for. Eligibility is the caller's job (see :func:`ineligibility`).
    """
    profile = SeriesProfile.of(history)
    wanted = set(names)
    if wanted & COMBINATIONS:
        wanted |= {member for member in COMBINATION_MEMBERS if ineligibility(member, profile) is None}
    forecasts: dict[ModelName, ModelForecast] = {}
    failures: dict[ModelName, str] = {}
    for name in MODEL_ORDER:
        if name not in wanted or name in COMBINATIONS:
            continue
        try:
            forecasts[name] = fit_model(name, history, start, horizon)
        except ModelFitError as error:
            failures[name] = str(error)
    members = {name: forecasts[name] for name in COMBINATION_MEMBERS if name in forecasts}
    failed_members = {name: failures[name] for name in COMBINATION_MEMBERS if name in failures}
    for name in sorted(wanted & COMBINATIONS, key=MODEL_ORDER.index):
        try:
            forecasts[name] = combine(name, members, failed_members)
        except ModelFitError as error:
            failed = ", ".join(f"{member}: {failures[member]}" for member in COMBINATION_MEMBERS if member in failures)
            failures[name] = str(error) + (f" (failed members: {failed})" if failed else "")
    return FitOutcome(forecasts, failures)
