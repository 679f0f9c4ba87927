"""Fitting one candidate model, and every candidate of a series at once.

ETS, Theta, ARIMA and CES are statsforecast's implementations, called directly (darts wraps the same ones;
its wrappers add a TimeSeries per fit and seconds of imports the engine does not need) and give their own
prediction intervals. The baselines (naive, seasonal naive, drift, mean) are their one-line rules, Croston is
statsforecast's SBA variant; they get a normal approximation on their in-sample one-step errors.
Combinations are built from the fitted members (see ``combination``).

Two things keep long histories cheap, neither of which changes a choice:
- the backtest scores point forecasts only, so its fits skip the intervals (CES simulates 5,000 paths for
  them);
- the form an automatic search picks on the training part (ETS components, Theta variant, CES season type,
  ARIMA orders) is re-estimated on the full history instead of searched again, once the training part is
  at least :data:`REUSE_FORM_MIN_LENGTH` quarters long. On shorter series the search is cheap and one more
  quarter can change it, so it runs again there.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from syno_forecast.candidates import (
    COMBINATION_MEMBERS,
    COMBINATIONS,
    MIN_LENGTH,
    MODEL_ORDER,
    QUANTILES,
    SEASON_LENGTH,
    SEASONAL_MIN_LENGTH,
    FloatArray,
    Form,
    ModelFitError,
    ModelForecast,
    ModelName,
    SeriesProfile,
    ineligibility,
)
from syno_forecast.combination import combine

# A form picked on a training part this long is re-estimated on the full history, not searched again.
REUSE_FORM_MIN_LENGTH = 4 * SEASON_LENGTH
# statsforecast's interval levels for QUANTILES, named as its forecasts name them ("lo-95.0", "hi-80.0").
_MIDDLE = QUANTILES.index(0.5)
LEVELS: tuple[float, ...] = tuple(
    round(100 * (high - low), 2) for low, high in zip(QUANTILES[:_MIDDLE], QUANTILES[_MIDDLE + 1 :][::-1], strict=True)
)


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


# ---------------------------------------------------------------- baselines


def _warning_notes(caught: Sequence[warnings.WarningMessage]) -> tuple[str, ...]:
    seen = dict.fromkeys(f"{item.category.__name__}: {item.message}" for item in caught)
    return tuple(f"warning during fit: {text}" for text in list(seen)[:3])


def _baseline_point(name: ModelName, history: FloatArray, horizon: int) -> FloatArray:
    if len(history) < MIN_LENGTH[name]:
        raise ModelFitError(f"{name} needs at least {MIN_LENGTH[name]} quarters")
    if name is ModelName.NAIVE:
        return np.full(horizon, float(history[-1]))
    if name is ModelName.MEAN:
        return np.full(horizon, float(np.mean(history)))
    if name is ModelName.SEASONAL_NAIVE:
        last_season = history[-SEASON_LENGTH:]
        return np.array([last_season[step % SEASON_LENGTH] for step in range(horizon)], dtype=np.float64)
    if name is ModelName.DRIFT:
        first, last = float(history[0]), float(history[-1])
        slope = (last - first) / (len(history) - 1)
        return np.linspace(last, last + slope * horizon, num=horizon + 1)[1:]
    from statsforecast.models import CrostonSBA  # statsforecast is loaded by the first model that needs it

    forecast = CrostonSBA().fit(history).predict(h=horizon)
    return np.asarray(forecast["mean"], dtype=np.float64).reshape(horizon)


def _fit_baseline(name: ModelName, history: FloatArray, horizon: int) -> ModelForecast:
    steps = _steps(horizon)
    length = len(history)
    if name is ModelName.ZERO:
        zeros = np.zeros(horizon)
        quantiles = np.zeros((horizon, len(QUANTILES)))
        return ModelForecast(name, "zero (all-zero history)", zeros, quantiles, "none (all zero)")
    point = _baseline_point(name, history, horizon)
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


# ---------------------------------------------------------------- statsforecast models


def _searching_model(name: ModelName, season_length: int) -> Any:
    """The automatic search of ``name`` (what picks a form)."""
    from statsforecast.models import AutoARIMA, AutoCES, AutoETS, AutoTheta  # seconds of imports: on first use

    if name is ModelName.ETS:
        return AutoETS(season_length=season_length)
    if name is ModelName.THETA:
        return AutoTheta(season_length=season_length)
    if name is ModelName.ARIMA:
        return AutoARIMA(season_length=season_length)
    return AutoCES(season_length=season_length)


def _fixed_model(name: ModelName, season_length: int, form: Form) -> Any:
    """``name`` restricted to ``form``, as :func:`_form_of` read it off a fitted search."""
    from statsforecast.models import ARIMA, AutoCES, AutoETS, AutoTheta

    if name is ModelName.ETS:
        return AutoETS(season_length=season_length, model=form["model"], damped=form["damped"])
    if name is ModelName.THETA:
        return AutoTheta(season_length=season_length, model=form["model"])
    if name is ModelName.ARIMA:
        return ARIMA(
            order=form["order"],
            seasonal_order=form["seasonal_order"],
            season_length=season_length,
            include_mean=form["include_mean"],
            include_drift=form["include_drift"],
        )
    return AutoCES(season_length=season_length, model=form["model"])


def _form_of(name: ModelName, fitted: Mapping[str, Any], season_length: int) -> Form:
    if name is ModelName.ETS:
        components = str(fitted["components"])
        return {"season_length": season_length, "model": components[:3], "damped": components[3] != "N"}
    if name is ModelName.THETA:
        return {"season_length": season_length, "model": str(fitted["modeltype"])}
    if name is ModelName.ARIMA:
        p, q, big_p, big_q, _, d, big_d = (int(value) for value in fitted["arma"])
        coefficients = fitted.get("coef", {})
        return {
            "season_length": season_length,
            "order": (p, d, q),
            "seasonal_order": (big_p, big_d, big_q),
            "include_mean": "intercept" in coefficients,
            "include_drift": "drift" in coefficients,
        }
    return {"season_length": season_length, "model": str(fitted["seasontype"])}


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


def _fit_statsforecast(
    name: ModelName, history: FloatArray, horizon: int, *, intervals: bool = True, form: Form | None = None
) -> ModelForecast:
    """Search (or, given a ``form`` found on the same seasonality, re-estimate) ``name`` and forecast."""
    is_seasonal = len(history) >= SEASONAL_MIN_LENGTH
    season_length = SEASON_LENGTH if is_seasonal else 1
    if form is not None and form["season_length"] != season_length:
        form = None
    model = _searching_model(name, season_length) if form is None else _fixed_model(name, season_length, form)
    model.fit(history)
    fitted = getattr(model, "model_", None)
    fitted = fitted if isinstance(fitted, dict) else {}
    quantiles: FloatArray | None = None
    if intervals and name is ModelName.CES:
        forecast = model.predict(h=horizon)
        point = np.asarray(forecast["mean"], dtype=np.float64).reshape(horizon)
        quantiles = _ces_quantiles(fitted, point, horizon)
    if quantiles is None or not intervals:
        forecast = model.predict(h=horizon, level=list(LEVELS) if intervals else None)
        point = np.asarray(forecast["mean"], dtype=np.float64).reshape(horizon)
    if intervals and quantiles is None:
        lows = [np.asarray(forecast[f"lo-{level}"], dtype=np.float64) for level in LEVELS]
        highs = [np.asarray(forecast[f"hi-{level}"], dtype=np.float64) for level in LEVELS[::-1]]
        quantiles = np.stack([*lows, point, *highs], axis=1)
    if not np.all(np.isfinite(point)) or (quantiles is not None and not np.all(np.isfinite(quantiles))):
        raise ModelFitError(f"{name} produced non-finite forecasts")
    description = _describe_statsforecast(name, fitted)
    if form is not None:
        description += " (form chosen on the training part, re-estimated)"
    if not is_seasonal:
        description += f" (no seasonality tried: fewer than {SEASONAL_MIN_LENGTH} quarters)"
    found = _form_of(name, fitted, season_length) if fitted else None
    return ModelForecast(name, description, point, quantiles, "model (statsforecast prediction levels)", form=found)


# statsforecast draws CES's intervals from 5,000 simulated paths, one Python-level call per path (~70 ms a
# fit, more than the fit itself): here the same simulation (same seed, same normal errors on the last states,
# same recursion) runs for all paths at once in numpy. statsforecast draws an error for every row of the
# state matrix of every path and uses only the last season's rows; only those are drawn here, so the paths
# are another sample of the same distribution and the quantiles agree within simulation noise (~1%).
_CES_PATHS = 5_000
_CES_SEED = 1
_CES_MIN_RESIDUALS = 10  # below this statsforecast draws its errors another way: left to it


def _ces_paths(start: FloatArray, season: str, horizon: int, par: Mapping[str, float]) -> FloatArray:
    """CES forecasts (paths, horizon) from perturbed last states (paths, m, components), as statsforecast's
    ``cesfcst`` computes them for one path (each step's error is zero up to rounding: the forecast is fed back)."""
    alpha_0, alpha_1, beta_0, beta_1 = (float(par[key]) for key in ("alpha_0", "alpha_1", "beta_0", "beta_1"))
    paths, m, components = start.shape
    states = np.zeros((paths, m + horizon, components))
    states[:, :m] = start
    forecasts = np.empty((paths, horizon))
    is_lag_one = season != "S"
    has_season_state = season in ("P", "F")
    for step in range(m, m + horizon):
        base = states[:, step - 1] if is_lag_one else states[:, step - m]
        forecast = base[:, 0].copy()
        if has_season_state:
            forecast += states[:, step - m, 2]
        forecasts[:, step - m] = forecast
        error = forecast - base[:, 0]
        if has_season_state:
            error -= states[:, step - m, 2]
        states[:, step, 0] = base[:, 0] - (1.0 - alpha_1) * base[:, 1] + (alpha_0 - alpha_1) * error
        states[:, step, 1] = base[:, 0] + (1.0 - alpha_0) * base[:, 1] + (alpha_0 + alpha_1) * error
        seasonal = states[:, step - m]
        if season == "P":
            states[:, step, 2] = seasonal[:, 2] + beta_0 * error
        elif season == "F":
            states[:, step, 2] = seasonal[:, 2] - (1.0 - beta_1) * seasonal[:, 3] + (beta_0 - beta_1) * error
            states[:, step, 3] = seasonal[:, 2] + (1.0 - beta_0) * seasonal[:, 3] + (beta_0 + beta_1) * error
    return forecasts


def _ces_quantiles(fitted: Mapping[str, Any], point: FloatArray, horizon: int) -> FloatArray | None:
    """CES's simulated quantiles (horizon, len(QUANTILES)), or ``None`` where statsforecast would not draw
    plain normal errors (then its own, slower, simulation is used)."""
    residuals = fitted.get("residuals")
    if (
        fitted.get("distribution", "normal") != "normal"
        or residuals is None
        or np.count_nonzero(~np.isnan(residuals)) < _CES_MIN_RESIDUALS
    ):
        return None
    states = np.asarray(fitted["states"], dtype=np.float64)
    season = str(fitted["seasontype"])
    m = 1 if season == "N" else int(fitted["m"])
    n = int(fitted["n"])
    last = states[n : n + m]
    errors = np.random.default_rng(_CES_SEED).normal(0, float(np.sqrt(fitted["sigma2"])), (_CES_PATHS, *last.shape))
    paths = _ces_paths(last + errors, season, horizon, fitted["par"])
    lows = [np.quantile(paths, 0.5 - level / 200, axis=0) for level in LEVELS]
    highs = [np.quantile(paths, 0.5 + level / 200, axis=0) for level in LEVELS[::-1]]
    return np.stack([*lows, point, *highs], axis=1)


_STATSFORECAST: frozenset[ModelName] = frozenset({ModelName.ETS, ModelName.THETA, ModelName.ARIMA, ModelName.CES})


# ---------------------------------------------------------------- fitting


def fit_model(
    name: ModelName, history: FloatArray, horizon: int, *, intervals: bool = True, form: Form | None = None
) -> ModelForecast:
    """Fit one single (non-combination) model and forecast ``horizon`` quarters.

    ``intervals=False`` leaves the statsforecast models' quantiles out (``None``): the backtest needs points
    only. ``form`` (from a fit on the training part) restricts a statsforecast model to it; should that fail
    on this history, the full search runs instead. Raises :class:`ModelFitError` with the library's message
    when fitting or forecasting fails.
    """
    if name in COMBINATIONS:
        raise ValueError(f"{name} is built from members with combine(), not fitted")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if name in _STATSFORECAST:
                try:
                    result = _fit_statsforecast(name, history, horizon, intervals=intervals, form=form)
                except Exception as error:
                    if form is None:
                        raise
                    result = _fit_statsforecast(name, history, horizon, intervals=intervals)
                    note = f"the training part's form failed on this history ({type(error).__name__}); searched again"
                    result = result.with_note(note)
            else:
                result = _fit_baseline(name, history, horizon)
        except ModelFitError:
            raise
        # statsforecast raises many unrelated types (ValueError, LinAlgError, the not-implemented error for
        # "tiny datasets", ZeroDivisionError...); each is recorded on the candidate, never swallowed.
        except Exception as error:
            raise ModelFitError(f"{type(error).__name__}: {error}") from error
    is_finite = np.all(np.isfinite(result.point)) and (
        result.quantiles is None or np.all(np.isfinite(result.quantiles))
    )
    if not is_finite:
        raise ModelFitError(f"{name} produced non-finite forecasts or intervals")
    return result.with_note(*_warning_notes(caught))


@dataclass(frozen=True, slots=True)
class FitOutcome:
    """Forecasts of the models that ran and the reason for each that did not."""

    forecasts: Mapping[ModelName, ModelForecast]
    failures: Mapping[ModelName, str]


def fit_candidates(
    names: Sequence[ModelName],
    history: FloatArray,
    horizon: int,
    *,
    intervals: bool = True,
    forms: Mapping[ModelName, Form] | None = None,
) -> FitOutcome:
    """Fit every model in ``names`` (members of a requested combination too) on ``history``.

    Members fitted only for a combination are reported in ``forecasts`` as well; callers pick what they
    asked for. Eligibility is the caller's job (see :func:`ineligibility`). ``intervals`` and ``forms``
    are passed on to :func:`fit_model`.
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
            forecasts[name] = fit_model(name, history, horizon, intervals=intervals, form=(forms or {}).get(name))
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
