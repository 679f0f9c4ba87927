"""Candidate forecasting models: their names, the rules that say which may run on a series, and what each gives back.

Every model returns the same thing (``ModelForecast``): a point forecast and five quantiles (2.5, 10, 50, 90,
97.5 %) per step. Fitting is in ``fitting``, combinations of several models in ``combination``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
# What an automatic search picked (e.g. {"model": "MAM", "damped": True} for ETS), to re-estimate it elsewhere.
Form = Mapping[str, Any]

SEASON_LENGTH = 4
QUANTILES: tuple[float, ...] = (0.025, 0.1, 0.5, 0.9, 0.975)
# Syntetos-Boylan cut-off: an average interval between non-zero quarters of 1.32 or more is intermittent.
INTERMITTENT_DEMAND_INTERVAL = 1.32


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
# ARIMA is not a member: on the tourism benchmark it took ~80% of the engine's time (its search refits
# dozens of models by numerical optimisation) and moved the combination's accuracy by less than the noise
# between samples (bench/forecast_tourism.py). It stays a candidate of its own.
COMBINATION_MEMBERS: tuple[ModelName, ...] = (
    ModelName.ETS,
    ModelName.THETA,
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
        return self.nonzero > 0 and self.average_demand_interval >= INTERMITTENT_DEMAND_INTERVAL

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
    """Forecast of one model: ``point`` has shape (h,), ``quantiles`` (h, len(QUANTILES)) or ``None`` when the
    fit was asked for points only. ``form`` is what a searching model picked (``None`` for the others)."""

    model: ModelName
    description: str
    point: FloatArray
    quantiles: FloatArray | None
    interval_method: str
    notes: tuple[str, ...] = ()
    form: Form | None = field(default=None, compare=False)

    def with_note(self, *notes: str) -> ModelForecast:
        return replace(self, notes=self.notes + notes) if notes else self
