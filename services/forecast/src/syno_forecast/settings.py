"""Forecast's settings: the common ones plus the forecast group (SYNO_FORECAST__...)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from syno_shared.service import Service
from syno_shared.settings import Settings

ForecastCohort = Literal["overall", "customer", "c2", "region"]


def _default_smape_thresholds() -> dict[ForecastCohort, float]:
    return {"overall": 25.0, "customer": 50.0, "c2": 50.0, "region": 25.0}


class ForecastOptions(BaseModel):
    top_customers: int = Field(default=20, ge=1, description="Top customers forecast individually.")
    smape_thresholds: dict[ForecastCohort, float] = Field(
        default_factory=_default_smape_thresholds,
        description=(
            "Limit on each cohort's mean holdout sMAPE, in percent (0..200, as the engine computes it), e.g. "
            '{"overall": 25, "customer": 50, "c2": 50}. A cohort above its limit, or with nothing backtested, is '
            "flagged in forecast.published and in notifications. The dict replaces the default as a whole: a "
            "cohort left out has no limit."
        ),
    )
    models: list[str] | None = Field(
        default=None, description="Candidate models (engine names, e.g. ['ets', 'theta']); unset = the engine's set."
    )
    batch_series: int = Field(
        default=25, ge=1, description="Series per work batch fanned out to the forecast replicas."
    )
    processes: int = Field(
        default=2,
        ge=0,
        description="Worker processes per replica for its batches (0 = one thread in the service process).",
    )
    pool_idle_seconds: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds without a batch after which a replica stops its worker processes and frees their memory;"
            " the next batch starts them again (a few seconds of imports)."
        ),
    )
    work_timeout_seconds: float = Field(
        default=600.0, gt=0, description="How long a run waits for all its batches before it is retried."
    )

    @field_validator("smape_thresholds")
    @classmethod
    def _thresholds_are_percent(cls, value: dict[ForecastCohort, float]) -> dict[ForecastCohort, float]:
        for cohort, limit in value.items():
            if not 1.0 <= limit <= 200.0:
                raise ValueError(
                    f"sMAPE threshold for {cohort!r} is {limit}: thresholds are percent between 1 and 200 "
                    "(write 25 for 25%, not 0.25)"
                )
        return value


class ForecastSettings(Settings):
    forecast: ForecastOptions = Field(default_factory=ForecastOptions)


ForecastService = Service[ForecastSettings]
