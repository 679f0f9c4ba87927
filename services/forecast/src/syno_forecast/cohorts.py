"""Holdout accuracy per cohort of series (overall, customer, c2, region) and whether it meets its sMAPE limit."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from syno_forecast.training import SEPARATOR
from syno_shared.events import CohortForecast


class CohortMetrics(BaseModel):
    """Holdout accuracy of one cohort of series and whether it meets its sMAPE threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cohort: str = Field(description="Cohort name.")
    series_count: int = Field(ge=0, description="Series forecast in the cohort.")
    backtested_count: int = Field(ge=0, description="Series with a holdout (the rest had too little history).")
    mape_mean: float | None = Field(description="Mean MAPE over series where it is defined.")
    mape_median: float | None = Field(description="Median MAPE over series where it is defined.")
    mape_count: int = Field(ge=0, description="Series with a defined MAPE (no zero actual held out).")
    smape_mean: float | None = Field(description="Mean sMAPE.")
    smape_median: float | None = Field(description="Median sMAPE.")
    mase_mean: float | None = Field(description="Mean MASE over series where it is defined.")
    mase_median: float | None = Field(description="Median MASE over series where it is defined.")
    baseline_smape_mean: float | None = Field(description="Mean sMAPE of seasonal naive on the same quarters.")
    threshold_smape: float | None = Field(description="Configured limit on the mean sMAPE (None: no limit).")
    is_threshold_met: bool = Field(description="Mean sMAPE within the limit; False when it cannot be shown.")

    def to_event(self) -> CohortForecast:
        """The cohort summary carried by forecast.published."""
        return CohortForecast(
            cohort=self.cohort,
            series_count=self.series_count,
            holdout_mape=self.mape_mean,
            holdout_smape=self.smape_mean,
            baseline_smape=self.baseline_smape_mean,
            threshold_smape=self.threshold_smape,
            is_threshold_met=self.is_threshold_met,
        )


def _summarise(per_series: pl.DataFrame, thresholds: Mapping[str, float]) -> list[CohortMetrics]:
    """Aggregate a (cohort, series_id, holdout_*, baseline_smape) frame with one row per series."""
    table = (
        per_series.lazy()
        .group_by("cohort")
        .agg(
            pl.len().alias("series_count"),
            pl.col("holdout_smape").is_not_null().sum().alias("backtested_count"),
            pl.col("holdout_mape").mean().alias("mape_mean"),
            pl.col("holdout_mape").median().alias("mape_median"),
            pl.col("holdout_mape").is_not_null().sum().alias("mape_count"),
            pl.col("holdout_smape").mean().alias("smape_mean"),
            pl.col("holdout_smape").median().alias("smape_median"),
            pl.col("holdout_mase").mean().alias("mase_mean"),
            pl.col("holdout_mase").median().alias("mase_median"),
            pl.col("baseline_smape").mean().alias("baseline_smape_mean"),
        )
        .sort("cohort")
        .collect()
    )
    summaries = []
    for row in table.iter_rows(named=True):
        threshold = thresholds.get(row["cohort"])
        is_met = threshold is None or (row["smape_mean"] is not None and row["smape_mean"] <= threshold)
        summaries.append(CohortMetrics(**row, threshold_smape=threshold, is_threshold_met=is_met))
    return summaries


def summarise_cohorts(forecasts: pl.DataFrame, thresholds: Mapping[str, float] | None = None) -> list[CohortMetrics]:
    """Mean and median MAPE, sMAPE and MASE per cohort of a ``tables.to_frame`` output (cohort = series_id
    prefix), and whether the mean sMAPE meets the cohort's limit in ``thresholds`` (cohorts without one
    always meet it). Undefined metrics (None) are left out of the averages.
    """
    per_series = (
        forecasts.lazy()
        .group_by("series_id")
        .agg(pl.col("holdout_mape", "holdout_smape", "holdout_mase", "baseline_smape").first())
        .with_columns(pl.col("series_id").str.split(SEPARATOR).list.first().alias("cohort"))
        .collect()
    )
    return _summarise(per_series, thresholds or {})
