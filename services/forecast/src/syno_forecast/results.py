"""What the engine gives back per series: holdout metrics, candidate outcomes, quarter forecasts.

Plain pydantic models with no forecasting library behind them, so the service process (the coordinator,
the work queue, the tables) can read and write results without importing the engine.
"""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class HoldoutMetrics(BaseModel):
    """Accuracy of one model on the held-out quarters."""

    model_config = _FROZEN

    horizon: int = Field(ge=1, description="Quarters held out.")
    mape: float | None = Field(description="MAPE in percent; None when a held-out actual is zero.")
    smape: float | None = Field(description="sMAPE in percent (0..200); 0/0 counts as 0.")
    mase: float | None = Field(description="MASE; None when the training part has no variation to scale by.")
    mase_season: int | None = Field(description="Lag m of the MASE scale (4, or 1 for short series).")
    notes: tuple[str, ...] = Field(default=(), description="Why a metric is undefined, if one is.")


class CandidateResult(BaseModel):
    """What happened to one candidate model in the backtest."""

    model_config = _FROZEN

    model: str = Field(description="Model name.")
    status: Literal["evaluated", "failed", "ineligible"] = Field(description="Outcome in the backtest.")
    detail: str = Field(description="Fitted form, or the reason it failed or was not run.")
    metrics: HoldoutMetrics | None = Field(default=None, description="Holdout accuracy when evaluated.")


class QuarterForecast(BaseModel):
    """Forecast for one target quarter; bounds are ordered lower_95 <= lower_80 <= point <= ..."""

    model_config = _FROZEN

    target_quarter: date = Field(description="First day of the quarter forecast.")
    point: float = Field(description="Point forecast.")
    lower_80: float = Field(description="Lower bound of the 80% interval.")
    upper_80: float = Field(description="Upper bound of the 80% interval.")
    lower_95: float = Field(description="Lower bound of the 95% interval.")
    upper_95: float = Field(description="Upper bound of the 95% interval.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.lower_95 <= self.lower_80 <= self.point <= self.upper_80 <= self.upper_95:
            raise ValueError(f"interval bounds out of order for {self.target_quarter}")
        return self


class SeriesForecast(BaseModel):
    """The model chosen for one series, why, how it did on the holdout, and its forecasts."""

    model_config = _FROZEN

    series_id: str = Field(description="Series identity from the input frame.")
    model: str = Field(description="Chosen model.")
    description: str = Field(description="Fitted form of the chosen model, e.g. 'AutoETS -> ETS(M,A,M)'.")
    reason: str = Field(description="Why this model: the backtest outcome, or why a fallback was used.")
    interval_method: str = Field(description="Where the intervals come from.")
    history_quarters: int = Field(ge=0, description="Complete quarters trained on (zeros filled).")
    actual_to_date: float | None = Field(description="Value so far in the partial current quarter.")
    metrics: HoldoutMetrics | None = Field(description="Chosen model's holdout accuracy (None: no backtest).")
    baseline_smape: float | None = Field(description="Seasonal naive's holdout sMAPE, the baseline.")
    forecasts: tuple[QuarterForecast, ...] = Field(description="One row per target quarter.")
    candidates: tuple[CandidateResult, ...] = Field(description="Every candidate considered.")
    notes: tuple[str, ...] = Field(default=(), description="Fit notes and warnings of the chosen model.")
