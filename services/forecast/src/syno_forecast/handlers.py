"""Forecast: marts.ready -> training series, batches on the work queue, forecasts -> forecast.published.

Each replica has two subscribers: `on_marts_ready` coordinates a run (one replica per snapshot: it fans
the series out and assembles the result) and `on_work_batch` takes batches of any run from the shared
work queue (see ``coordinator`` and ``workqueue``).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from datetime import date

import asyncpg
from faststream.exceptions import NackMessage, RejectMessage
from faststream.nats.annotations import NatsMessage
from opentelemetry import trace
from pydantic import ValidationError

from syno_forecast import artifacts, coordinator, tables, training, warehouse
from syno_forecast.candidates import parse_models
from syno_forecast.cohorts import summarise_cohorts
from syno_forecast.runner import BatchRunner
from syno_forecast.series import build_quarterly_series
from syno_forecast.settings import ForecastService
from syno_forecast.workqueue import (
    BATCH_RESULTS,
    FORECAST_WORK_SUBJECTS,
    WORK_DURABLE_SUFFIX,
    WorkBatch,
    forecast_work_stream,
    make_batches,
)
from syno_shared import bus, faults
from syno_shared.errors import InputRejected, SynoError, TransientError
from syno_shared.events import ForecastPublished, MartsReady
from syno_shared.logging import get_logger
from syno_shared.stage import StageOutcome, keep_alive, run_stage

tracer = trace.get_tracer("syno.forecast")

WORK_RETRY_SECONDS = 5.0


def register(service: ForecastService, runner: BatchRunner) -> None:
    register_coordinator(service)
    register_worker(service, runner)


def register_coordinator(service: ForecastService) -> None:
    @service.subscriber(bus.MARTS_READY, event=MartsReady)
    async def on_marts_ready(event: MartsReady, message: NatsMessage) -> None:
        await run_stage(
            service.context, event_in=event, message=message, work=lambda: forecast_snapshot(service, event)
        )


def register_worker(service: ForecastService, runner: BatchRunner) -> None:
    """The replica's share of the work queue: one durable for all replicas, so each batch goes to one."""

    @service.subscriber(
        FORECAST_WORK_SUBJECTS,
        durable_suffix=WORK_DURABLE_SUFFIX,
        stream=forecast_work_stream(),
        max_workers=runner.concurrency,
    )
    async def on_work_batch(message: NatsMessage) -> None:
        try:
            batch = WorkBatch.model_validate_json(message.body)
        except ValidationError as error:
            get_logger().error("work_batch_rejected", errors=error.errors()[:5])
            raise RejectMessage from error
        async with keep_alive(message):  # a replica that dies holding the batch gives it back in seconds
            faults.at("forecast.batch")
            await run_batch(service.pool, runner, batch)


def complete_quarter(event: MartsReady) -> date:
    if event.latest_complete_quarter is None:
        raise InputRejected("no complete quarter in the snapshot: nothing to train on", code="no_complete_quarter")
    return event.latest_complete_quarter


def configured_models(models: Sequence[str] | None) -> Sequence[str] | None:
    try:
        parse_models(models)
    except ValueError as error:
        raise SynoError(f"SYNO_FORECAST__MODELS: {error}", code="bad_configuration") from error
    return models


async def forecast_snapshot(service: ForecastService, event: MartsReady) -> StageOutcome:
    settings = service.settings.forecast
    last_complete_quarter = complete_quarter(event)
    models = configured_models(settings.models)
    forecast_run_id = uuid.uuid4().hex
    with tracer.start_as_current_span("forecast.fetch_training_set"):
        marts = await warehouse.fetch_marts(service.pool, event.marts_schema)
        series = training.training_set(marts, last_complete_quarter, settings.top_customers)
        quarterly = build_quarterly_series(series, last_complete_quarter=last_complete_quarter)
    batches = make_batches(
        quarterly,
        forecast_run_id=forecast_run_id,
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        last_complete_quarter=last_complete_quarter,
        batch_series=settings.batch_series,
        models=models,
    )
    with tracer.start_as_current_span("forecast.backtest_and_forecast") as span:
        span.set_attribute("syno.forecast_run_id", forecast_run_id)
        span.set_attribute("syno.batches", len(batches))
        await coordinator.publish_batches(service.broker, batches)
        collected = await coordinator.collect_results(
            service.pool, forecast_run_id, len(batches), wait_seconds=settings.work_timeout_seconds
        )
        forecasts = tables.to_frame(collected.forecasts)
        span.set_attribute("syno.series", forecasts.height)
    rows = tables.table_rows(forecasts, forecast_run_id=forecast_run_id, snapshot_id=event.snapshot_id)
    cohorts = summarise_cohorts(forecasts, {str(cohort): limit for cohort, limit in settings.smape_thresholds.items()})
    flagged = [cohort.cohort for cohort in cohorts if not cohort.is_threshold_met]
    if flagged:
        get_logger().warning("forecast_cohorts_flagged", cohorts=flagged, snapshot_id=event.snapshot_id)
    artifact_dir = service.settings.processed_dir / "forecasts" / forecast_run_id
    with tracer.start_as_current_span("forecast.store_model_artifacts"):
        await asyncio.to_thread(artifacts.store_artifacts, artifact_dir, series, forecasts, event)
    published = ForecastPublished(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        forecast_run_id=forecast_run_id,
        target_quarter=tables.target_quarter(forecasts),
        cohorts=[cohort.to_event() for cohort in cohorts],
        tiers=tables.tier_forecasts(rows.svr_rm),
        tables=list(tables.FORECAST_TABLES),
        marts_schema=event.marts_schema,
        publication=event.publication,
        artifact_path=str(artifact_dir.relative_to(service.settings.data_dir)),
        workbook=event.workbook,
        quality=event.quality,
    )
    with tracer.start_as_current_span("forecast.publish_forecast_outputs"):
        await warehouse.commit_run(service.pool, published=published, rows=rows, series_count=forecasts.height)
    details = {
        "forecast_run_id": forecast_run_id,
        "batches": len(batches),
        "workers": collected.workers,
        "batch_seconds": round(collected.batch_seconds, 3),
        "flagged_cohorts": flagged,
    }
    return StageOutcome(subject=bus.FORECAST_PUBLISHED, event=published, rows=forecasts.height, details=details)


async def run_batch(pool: asyncpg.Pool, runner: BatchRunner, batch: WorkBatch) -> None:
    """Evaluate one batch and stage its forecasts (or its error) for the run's coordinator."""
    log = get_logger().bind(
        run_id=batch.run_id,
        snapshot_id=batch.snapshot_id,
        forecast_run_id=batch.forecast_run_id,
        batch_number=batch.batch_number,
        worker=runner.name,
    )
    if await warehouse.has_batch_result(pool, batch.forecast_run_id, batch.batch_number):
        log.info("forecast_batch_skipped", reason="already done (redelivery)")
        return
    started = time.perf_counter()
    payload: str | None = None
    error_text: str | None = None
    with tracer.start_as_current_span("forecast.evaluate_batch") as span:
        span.set_attribute("syno.snapshot_id", batch.snapshot_id)
        span.set_attribute("syno.batch_number", batch.batch_number)
        span.set_attribute("syno.series", len(batch.series))
        try:
            results = await runner.evaluate(batch)
        except TransientError as error:
            log.warning("forecast_batch_retrying", code=error.code, error=error.message)
            raise NackMessage(delay=WORK_RETRY_SECONDS) from error
        except Exception as error:
            # Not swallowed: staged as the batch's error, which fails the run with this message.
            error_text = f"{type(error).__name__}: {error}"
            log.exception("forecast_batch_failed")
        else:
            payload = BATCH_RESULTS.dump_json(results).decode()
    seconds = time.perf_counter() - started
    await warehouse.store_batch_result(
        pool,
        forecast_run_id=batch.forecast_run_id,
        batch_number=batch.batch_number,
        series_count=len(batch.series),
        payload=payload,
        error=error_text,
        worker=runner.name,
        seconds=seconds,
    )
    log.info(
        "forecast_batch_done", series=len(batch.series), seconds=round(seconds, 3), is_failed=error_text is not None
    )
