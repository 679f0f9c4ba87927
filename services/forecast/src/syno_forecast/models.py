"""Candidate forecasting models, fitted through darts, and the rules that say which may run on a series.

Every model returns the same thing: a point forecast and five quantiles (2.5, 10, 50, 90, 97.5 %) per
step. Models built on statsforecast (ETS, Theta, ARIMA, CES) give their own quantiles; the baselines and
Croston get a normal approximation on their in-sample one-step errors; a combination takes the mean (or
median) of its members' points and the quantiles of the equal-weight mixture of their distributions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt
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
from scipy.special import ndtr  # type: ignore[import-untyped]  # comes with darts/statsforecast; no stubs

FloatArray = npt.NDArray[np.float64]

SEASON_LENGTH = 4
QUANTILES: tuple[float, ...] = (0.025, 0.1, 0.5, 0.9, 0.975)
# Syntetos-Boylan cut-off: an average interval between non-zero quarters of 1.32 or more is intermittent.
INTERMITTENT_ADI = 1.32


class ModelName(StrEnum):
    """Every model the engine knows, from the simplest to the most complex (ties go to the simpler)."""

    ZERO = "zero"
    NAIVE = "naive"
    MEAN = "mean"
    SEASONAL_NAIVE = "seasonal_naive"
    DRIFT = "drift"
    CROSTON = "croston"
    THETA = "theta"
    ETS = "ets"
    CES = "ces"
    ARIMA = "arima"
    COMBINATION = "combination"
    COMBINATION_MEDIAN = "combination_median"


MODEL_ORDER: tuple[ModelName, ...] = tuple(ModelName)

# What the service and the tourism benchmark run unless told otherwise. Choosing per series between the
# mean and the median of the same members keeps the choice robust: on the tourism benchmark a choice
# among single models on one short holdout loses to ETS alone (see bench/forecast_tourism.py).
DEFAULT_MODELS: tuple[ModelName, ...] = (ModelName.COMBINATION, ModelName.COMBINATION_MEDIAN)
# Everything a caller may ask for; the fallbacks (zero, naive, mean, croston) join by rule, not by request.
ALL_MODELS: tuple[ModelName, ...] = (
    ModelName.SEASONAL_NAIVE,
    ModelName.DRIFT,
    ModelName.ETS,
    ModelName.THETA,
    ModelName.ARIMA,
    ModelName.CES,
    ModelName.COMBINATION,
    ModelName.COMBINATION_MEDIAN,
)
COMBINATION_MEMBERS: tuple[ModelName, ...] = (
    ModelName.ETS,
    ModelName.THETA,
    ModelName.ARIMA,
    ModelName.CES,
    ModelName.SEASONAL_NAIVE,
)
COMBINATIONS: frozenset[ModelName] = frozenset({ModelName.COMBINATION, ModelName.COMBINATION_MEDIAN})
INTERMITTENT_FALLBACKS: tuple[ModelName, ...] = (ModelName.CROSTON, ModelName.MEAN)
SHORT_FALLBACKS: tuple[ModelName, ...] = (ModelName.NAIVE, ModelName.MEAN)

# Minimum training length (quarters) per model. Seasonal naive repeats one season and needs one seasonal
# difference for its error; ETS and Theta need two full seasons to estimate seasonality and are fitted
# without it below that (statsforecast's ETS refuses fewer than 7 points: "tiny datasets"); ARIMA and CES
# need four seasons (they are also 10-100x slower to fit than ETS on short series).
MIN_LENGTH: Mapping[ModelName, int] = {
    ModelName.ZERO: 1,
    ModelName.NAIVE: 1,
    ModelName.MEAN: 1,
    ModelName.SEASONAL_NAIVE: SEASON_LENGTH + 1,
    ModelName.DRIFT: 3,
    ModelName.CROSTON: 3,
    ModelName.THETA: 6,
    ModelName.ETS: 7,
    ModelName.CES: 4 * SEASON_LENGTH,
    ModelName.ARIMA: 4 * SEASON_LENGTH,
    ModelName.COMBINATION: 1,
    ModelName.COMBINATION_MEDIAN: 1,
}
SEASONAL_MIN_LENGTH = 2 * SEASON_LENGTH
# Models that describe smooth demand; they are not run on intermittent series.
CONTINUOUS: frozenset[ModelName] = frozenset(
    {
        ModelName.DRIFT,
        ModelName.THETA,
        ModelName.ETS,
        ModelName.CES,
        ModelName.ARIMA,
        ModelName.COMBINATION,
        ModelName.COMBINATION_MEDIAN,
    }
)


class ModelFitError(RuntimeError):
    """A model could not be fitted or could not forecast; the message says why."""


def parse_models(models: Iterable[str] | None) -> tuple[ModelName, ...]:
    """Validate requested model names (``None`` -> :data:`DEFAULT_MODELS`), keeping the simplest-first order."""
    if models is None:
        return DEFAULT_MODELS
    requested = list(models)
    known = {name.value for name in ModelName}
    unknown = sorted(set(requested) - known)
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {sorted(known)}")
    if not requested:
        raise ValueError("at least one model must be requested")
    wanted = {ModelName(name) for name in requested}
    return tuple(name for name in MODEL_ORDER if name in wanted)


@dataclass(frozen=True, slots=True)
class SeriesProfile:
    """What the eligibility rules look at."""

    length: int
    nonzero: int
    is_nonnegative: bool

    @classmethod
    def of(cls, values: FloatArray) -> SeriesProfile:
        return cls(
            length=len(values),
            nonzero=int(np.count_nonzero(values)),
            is_nonnegative=bool(np.all(values >= 0)),
        )

    @property
    def is_all_zero(self) -> bool:
        return self.nonzero == 0

    @property
    def average_demand_interval(self) -> float:
        return math.inf if self.nonzero == 0 else self.length / self.nonzero

    @property
    def is_intermittent(self) -> bool:
        return self.nonzero > 0 and self.average_demand_interval >= INTERMITTENT_ADI

    def describe(self) -> str:
        zeros = self.length - self.nonzero
        return f"{zeros} of {self.length} quarters are zero (ADI {self.average_demand_interval:.2f})"


def ineligibility(name: ModelName, profile: SeriesProfile) -> str | None:
    """Why ``name`` may not run on a series with this profile, or ``None`` when it may."""
    if name is ModelName.ZERO:
        return None if profile.is_all_zero else "only for an all-zero history"
    if profile.is_all_zero:
        return "all-zero history: the zero forecast is used"
    if name is ModelName.CROSTON and not profile.is_intermittent:
        return f"only for intermittent series; {profile.describe()}"
    if name in CONTINUOUS and profile.is_intermittent:
        return f"intermittent series: {profile.describe()}"
    needed = MIN_LENGTH[name]
    if profile.length < needed:
        return f"needs at least {needed} quarters, has {profile.length}"
    if name in COMBINATIONS:
        members = [member for member in COMBINATION_MEMBERS if ineligibility(member, profile) is None]
        if len(members) < 2:
            return f"needs at least 2 eligible members, has {len(members)} with {profile.length} quarters"
    return None


@dataclass(frozen=True, slots=True)
class ModelForecast:
    """Forecast of one model: ``point`` has shape (h,), ``quantiles`` (h, len(QUANTILES))."""

    model: ModelName
    description: str
    point: FloatArray
    quantiles: FloatArray
    interval_method: str
    notes: tuple[str, ...] = ()


def quarterly_timeseries(values: FloatArray, start: date) -> TimeSeries:
    """A darts series on a quarter-start index (``freq="QS"``, so gaps can never confuse inference)."""
    index = pd.date_range(pd.Timestamp(start), periods=len(values), freq="QS")
    return TimeSeries.from_times_and_values(index, values.astype(np.float64).reshape(-1, 1))


# ---------------------------------------------------------------- intervals for models without their own


def _normal_quantiles(point: FloatArray, sigma: float, spread: FloatArray) -> FloatArray:
    z = np.array([NormalDist().inv_cdf(q) for q in QUANTILES], dtype=np.float64)
    return np.asarray(point[:, None] + sigma * spread[:, None] * z[None, :], dtype=np.float64)


def _rms(errors: FloatArray) -> float | None:
    errors = errors[np.isfinite(errors)]
    if errors.size < 2:
        return None
    return float(np.sqrt(np.mean(errors**2)))


def _residual_intervals(
    point: FloatArray, residuals: FloatArray, spread: FloatArray, history: FloatArray
) -> tuple[FloatArray, str]:
    sigma = _rms(residuals)
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
_DARTS_BASELINE_MIN = 3


def _baseline_point(name: ModelName, history: FloatArray, series: TimeSeries, horizon: int) -> FloatArray:
    if len(history) < _DARTS_BASELINE_MIN:
        if name is ModelName.MEAN:
            return np.full(horizon, float(history.mean()))
        if name is ModelName.NAIVE:
            return np.full(horizon, float(history[-1]))
        raise ModelFitError(f"{name} needs at least {_DARTS_BASELINE_MIN} quarters")
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
    n = len(history)
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
        spread = np.sqrt(steps * (1 + steps / max(n - 1, 1)))
        quantiles, method = _residual_intervals(point, changes - changes.mean(), spread, history)
        slope = float(changes.mean())
        return ModelForecast(name, f"naive with drift ({slope:+.4g} per quarter)", point, quantiles, method)
    spread = np.full(horizon, math.sqrt(1 + 1 / n))
    if name is ModelName.MEAN:
        quantiles, method = _residual_intervals(point, history - history.mean(), spread, history)
        return ModelForecast(name, f"mean of {n} quarters", point, quantiles, method)
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
    seasonal = len(history) >= SEASONAL_MIN_LENGTH
    model = _STATSFORECAST[name](
        season_length=SEASON_LENGTH if seasonal else 1,
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
    if not seasonal:
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


def _mixture_quantiles(quantiles: FloatArray) -> FloatArray:
    """Quantiles (h, len(QUANTILES)) of the equal-weight mixture of members given as (members, h, 5).

    Each member is read as a split normal around its median, its two spreads taken from its 80% and 95%
    bounds; the mixture CDF is inverted by bisection. Unlike averaging quantiles, the mixture widens when
    members disagree, which is what a combination's uncertainty should do.
    """
    middle = QUANTILES.index(0.5)
    centre = quantiles[:, :, middle]
    below = [i for i in range(len(QUANTILES)) if i < middle]
    above = [i for i in range(len(QUANTILES)) if i > middle]
    z = np.array([NormalDist().inv_cdf(q) for q in QUANTILES])
    tiny = 1e-9 * (np.abs(centre) + 1.0)
    low_sd = np.maximum(np.mean([(quantiles[:, :, i] - centre) / z[i] for i in below], axis=0), tiny)
    high_sd = np.maximum(np.mean([(quantiles[:, :, i] - centre) / z[i] for i in above], axis=0), tiny)
    low_weight = 2 * low_sd / (low_sd + high_sd)
    high_weight = 2 * high_sd / (low_sd + high_sd)

    levels = np.array([q for q in QUANTILES if q != 0.5])[:, None]  # (levels, 1)
    lower = np.broadcast_to(np.min(centre - 10 * low_sd, axis=0), (len(levels), centre.shape[1])).copy()
    upper = np.broadcast_to(np.max(centre + 10 * high_sd, axis=0), lower.shape).copy()
    members = centre.shape[0]
    for _ in range(48):  # bisection on all levels and steps at once: the bracket shrinks 2^48-fold
        mid = (lower + upper) / 2
        x = mid[:, None, :]  # (levels, 1, h) against members (members, h)
        left = low_weight * ndtr((x - centre) / low_sd)
        right = 1 - high_weight * ndtr((centre - x) / high_sd)
        mixture_cdf = np.where(x < centre, left, right).sum(axis=1) / members
        is_below = mixture_cdf < levels
        lower = np.where(is_below, mid, lower)
        upper = np.where(is_below, upper, mid)
    result = np.empty(quantiles.shape[1:], dtype=np.float64)
    solved = ((lower + upper) / 2).T  # (h, levels)
    result[:, :middle] = solved[:, :middle]
    result[:, middle] = centre.mean(axis=0)
    result[:, middle + 1 :] = solved[:, middle:]
    return result


def combine(
    name: ModelName, members: Mapping[ModelName, ModelForecast], failed: Mapping[ModelName, str] | None = None
) -> ModelForecast:
    """Mean (``combination``) or median (``combination_median``) of the members' points.

    The intervals are those of the equal-weight mixture of the members' forecast distributions.
    ``failed`` members (name -> error) are named in the notes.
    """
    if len(members) < 2:
        raise ModelFitError(f"a combination needs at least 2 fitted members, got {len(members)}")
    names = [member for member in COMBINATION_MEMBERS if member in members]
    points = np.stack([members[member].point for member in names])
    reduce = np.median if name is ModelName.COMBINATION_MEDIAN else np.mean
    label = "median" if name is ModelName.COMBINATION_MEDIAN else "mean"
    point = np.asarray(reduce(points, axis=0), dtype=np.float64)
    quantiles = _mixture_quantiles(np.stack([members[member].quantiles for member in names]))
    quantiles[:, QUANTILES.index(0.5)] = point
    notes = tuple(f"member {member} left out: {error}" for member, error in (failed or {}).items())
    return ModelForecast(
        name,
        f"{label} of " + "; ".join(members[member].description for member in names),
        point,
        quantiles,
        "equal-weight mixture of the members' forecast distributions",
        notes,
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
