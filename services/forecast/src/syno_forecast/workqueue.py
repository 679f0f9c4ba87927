"""The forecast replicas' shared work queue: its stream, subjects and consumer, and the batches on it.

The replica that receives marts.ready splits the run's series into batches (``make_batches``) and publishes
them on ``forecast.work.<forecast_run_id>``, a work-queue stream of the forecast service's own (a message is
gone once a replica acks it), apart from the event stream. Every replica takes batches from the queue. A
batch is self-contained: series, target and models travel with it, so any replica can take any batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from typing import Final

from faststream.nats import JStream, RetentionPolicy, StorageType
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from syno_forecast.results import SeriesForecast
from syno_forecast.series import QuarterlySeries

FORECAST_WORK_STREAM: Final = "SYNO_FORECAST_WORK"
FORECAST_WORK_SUBJECTS: Final = "forecast.work.*"
FORECAST_WORK_MAX_AGE_SECONDS: Final = 24 * 3600.0  # an unclaimed batch of a long-abandoned run expires
FORECAST_WORK_DUPLICATE_WINDOW_SECONDS: Final = 120.0
# One durable for all replicas (syno-forecast-work), so each batch goes to one of them.
WORK_DURABLE_SUFFIX: Final = "work"
WORK_SCHEMA_VERSION: Final = 2  # 2: batch_no -> batch_number
# A batch's forecasts as staged for the coordinator (a JSON array of SeriesForecast).
BATCH_RESULTS = TypeAdapter(list[SeriesForecast])


def forecast_work_subject(forecast_run_id: str) -> str:
    return f"forecast.work.{forecast_run_id}"


def forecast_work_stream() -> JStream:
    """The forecast work queue: file storage, work-queue retention, one day at most."""
    return JStream(
        name=FORECAST_WORK_STREAM,
        subjects=[FORECAST_WORK_SUBJECTS],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=FORECAST_WORK_DUPLICATE_WINDOW_SECONDS,
        max_age=FORECAST_WORK_MAX_AGE_SECONDS,
    )


class SeriesPayload(BaseModel):
    """One quarterly series as it travels in a work batch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    series_id: str = Field(description="Series identity, `<cohort>|<key>|<metric>`.")
    start: date | None = Field(description="First complete quarter (None: only a partial quarter).")
    values: list[float] = Field(description="Complete quarters, oldest first, gaps as zeros.")
    actual_to_date: float | None = Field(description="Value so far in the partial current quarter.")
    filled_quarters: int = Field(ge=0, description="Quarters filled with an explicit zero.")

    @classmethod
    def of(cls, series: QuarterlySeries) -> SeriesPayload:
        return cls(
            series_id=series.series_id,
            start=series.start,
            values=list(series.values),
            actual_to_date=series.actual_to_date,
            filled_quarters=series.filled_quarters,
        )

    def to_series(self) -> QuarterlySeries:
        return QuarterlySeries(
            self.series_id, self.start, tuple(self.values), self.actual_to_date, self.filled_quarters
        )


class WorkBatch(BaseModel):
    """A share of one forecast run's series, for whichever replica takes it from the work queue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = Field(default=WORK_SCHEMA_VERSION, description="Version of this message's schema.")
    forecast_run_id: str = Field(description="The forecast run the batch belongs to.")
    run_id: str = Field(description="Pipeline run of the snapshot.")
    snapshot_id: str = Field(description="Snapshot the series come from.")
    batch_number: int = Field(ge=0, description="Position of the batch in the run (0-based).")
    batch_count: int = Field(ge=1, description="Batches in the run.")
    last_complete_quarter: date = Field(description="Latest complete quarter of the snapshot.")
    horizon: int = Field(default=1, ge=1, description="Quarters forecast.")
    models: list[str] | None = Field(default=None, description="Candidate models (None: the engine's set).")
    series: list[SeriesPayload] = Field(description="The series to backtest and forecast.")

    @property
    def subject(self) -> str:
        return forecast_work_subject(self.forecast_run_id)

    @property
    def message_id(self) -> str:
        """Nats-Msg-Id: a batch published twice is dropped by the work stream."""
        return f"{self.subject}:{self.batch_number}"


def split_series(series: Sequence[QuarterlySeries], batch_series: int) -> list[list[QuarterlySeries]]:
    """At most ``batch_series`` series per batch; interleaved so long and short series spread evenly."""
    count = math.ceil(len(series) / batch_series)
    return [list(series[start::count]) for start in range(count)]


def make_batches(
    series: Sequence[QuarterlySeries],
    *,
    forecast_run_id: str,
    run_id: str,
    snapshot_id: str,
    last_complete_quarter: date,
    batch_series: int,
    models: Sequence[str] | None = None,
    horizon: int = 1,
) -> list[WorkBatch]:
    parts = split_series(series, batch_series)
    return [
        WorkBatch(
            forecast_run_id=forecast_run_id,
            run_id=run_id,
            snapshot_id=snapshot_id,
            batch_number=number,
            batch_count=len(parts),
            last_complete_quarter=last_complete_quarter,
            horizon=horizon,
            models=list(models) if models is not None else None,
            series=[SeriesPayload.of(item) for item in part],
        )
        for number, part in enumerate(parts)
    ]
