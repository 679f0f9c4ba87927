"""Forecast: marts.ready -> training series, batches on the work queue, forecasts -> forecast.published.

Each replica has two subscribers: `on_marts_ready` coordinates a run (one replica per snapshot: it fans
the series out and assembles the result) and `on_work_batch` takes batches of any run from the shared
work queue. The coordinator only waits (asynchronously) while batches are out, so its own replica keeps
taking batches too: one replica alone does the whole run, more replicas finish it sooner.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import asyncpg
import polars as pl
from faststream.exceptions import NackMessage, RejectMessage
from faststream.nats.annotations import NatsMessage
from opentelemetry import trace
from pydantic import ValidationError

from syno_forecast import training, warehouse
from syno_forecast.backtest import SeriesForecast
from syno_forecast.engine import summarise_cohorts, to_frame
from syno_forecast.models import parse_models
from syno_forecast.series import build_quarterly_series
from syno_forecast.settings import ForecastService
from syno_forecast.work import BatchRunner
from syno_forecast.workqueue import (
    BATCH_RESULTS,
    FORECAST_WORK_STREAM,
    FORECAST_WORK_SUBJECTS,
    WORK_ACK_WAIT_SECONDS,
    WORK_DURABLE_SUFFIX,
    WorkBatch,
    forecast_work_stream,
    make_batches,
)
from syno_shared import bus, db
from syno_shared.errors import InputRejected, SynoError, TransientError
from syno_shared.events import ForecastPublished, MartsReady, TierForecast
from syno_shared.logging import get_logger
from syno_shared.stage import StageOutcome, parse_event, run_stage

tracer = trace.get_tracer("syno.forecast")

WORK_RETRY_SECONDS = 5.0
POLL_SECONDS = 0.2
PROGRESS_LOG_SECONDS = 10.0


def register(service: ForecastService, runner: BatchRunner) -> None:
    register_coordinator(service)
    register_worker(service, runner)


def register_coordinator(service: ForecastService) -> None:
    @service.subscriber(bus.MARTS_READY)
    async def on_marts_ready(message: NatsMessage) -> None:
        event = await parse_event(service.context, MartsReady, message)
        if event is not None:
            await run_stage(
                service.context, event_in=event, message=message, work=lambda: forecast_snapshot(service, event)
            )


def register_worker(service: ForecastService, runner: BatchRunner) -> None:
    """The replica's share of the work queue: one durable for all replicas, so each batch goes to one."""

    @service.subscriber(
        FORECAST_WORK_SUBJECTS,
        durable_suffix=WORK_DURABLE_SUFFIX,
        stream=forecast_work_stream(),
        ack_wait=WORK_ACK_WAIT_SECONDS,
        max_workers=runner.concurrency,
    )
    async def on_work_batch(message: NatsMessage) -> None:
        try:
            batch = WorkBatch.model_validate_json(message.body)
        except ValidationError as error:
            get_logger().error("work_batch_rejected", errors=error.errors()[:5])
            raise RejectMessage from error
        await run_batch(service.pool, runner, batch)


def training_set(marts: dict[str, pl.DataFrame], last_complete_quarter: date, top_n: int) -> pl.DataFrame:
    parts = []
    if marts["svr_rm_quarterly"].height:
        parts.append(training.tier_series(marts["svr_rm_quarterly"]))
    customers_frame = marts["svr_rm_customer_quarterly"]
    if customers_frame.height:
        customers = training.top_customers(customers_frame, last_complete_quarter=last_complete_quarter, top_n=top_n)
        parts.append(training.customer_series(customers_frame, customers))
    if marts["c2_adoption_scorecard"].height:
        parts.append(training.c2_series(marts["c2_adoption_scorecard"]))
    if marts["sellout_region_quarterly"].height:
        parts.append(training.region_series(marts["sellout_region_quarterly"]))
    return (
        pl.concat(parts)
        if parts
        else pl.DataFrame(schema={"series_id": pl.String, "quarter": pl.Date, "value": pl.Float64})
    )


def table_rows(
    forecasts: pl.DataFrame, *, forecast_run_id: str, snapshot_id: str
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Split engine output into forecast.svr_rm, forecast.c2 and forecast.sellout rows."""
    parts = forecasts.with_columns(
        pl.col("series_id")
        .str.split_exact(training.SEPARATOR, 2)
        .struct.rename_fields(["cohort", "key", "metric"])
        .alias("parts")
    ).unnest("parts")
    common = [
        "target_quarter",
        "metric",
        "point",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
        "model",
        "reason",
        "holdout_mape",
        "holdout_smape",
        "holdout_mase",
        "baseline_smape",
    ]
    head = [pl.lit(forecast_run_id).alias("forecast_run_id"), pl.lit(snapshot_id).alias("snapshot_id")]
    svr_rm = parts.filter(pl.col("cohort").is_in(["overall", "customer"])).select(
        *head,
        "cohort",
        pl.when(pl.col("cohort") == "overall").then(pl.col("key")).otherwise(pl.lit("TOTAL")).alias("tier"),
        pl.when(pl.col("cohort") == "customer").then(pl.col("key")).alias("customer"),
        *common,
    )
    c2 = parts.filter(pl.col("cohort") == "c2").select(
        *head, "cohort", pl.col("key").alias("service_family"), pl.lit(None, pl.String).alias("customer"), *common
    )
    sellout = parts.filter(pl.col("cohort") == "region").select(*head, "cohort", pl.col("key").alias("region"), *common)
    return svr_rm, c2, sellout


async def forecast_snapshot(service: ForecastService, event: MartsReady) -> StageOutcome:
    settings, pool = service.settings, service.pool
    if event.latest_complete_quarter is None:
        raise InputRejected("no complete quarter in the snapshot: nothing to train on", code="no_complete_quarter")
    models = settings.forecast.models
    try:
        parse_models(models)
    except ValueError as error:
        raise SynoError(f"SYNO_FORECAST__MODELS: {error}", code="bad_configuration") from error
    forecast_run_id = uuid.uuid4().hex
    with tracer.start_as_current_span("forecast.fetch_training_set"):
        marts = await warehouse.fetch_marts(pool)
        series = training_set(marts, event.latest_complete_quarter, settings.forecast.top_customers)
        quarterly = build_quarterly_series(series, last_complete_quarter=event.latest_complete_quarter)
    batches = make_batches(
        quarterly,
        forecast_run_id=forecast_run_id,
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        last_complete_quarter=event.latest_complete_quarter,
        batch_series=settings.forecast.batch_series,
        models=models,
    )
    with tracer.start_as_current_span("forecast.backtest_and_forecast") as span:
        span.set_attribute("syno.forecast_run_id", forecast_run_id)
        span.set_attribute("syno.batches", len(batches))
        await publish_batches(service, batches)
        results, done = await collect_results(
            pool, forecast_run_id, len(batches), wait_seconds=settings.forecast.work_timeout_seconds
        )
        forecasts = to_frame(sorted(results, key=lambda result: result.series_id))
        span.set_attribute("syno.series", forecasts.height)
    svr_rm, c2, sellout = table_rows(forecasts, forecast_run_id=forecast_run_id, snapshot_id=event.snapshot_id)
    thresholds = {str(cohort): limit for cohort, limit in settings.forecast.smape_thresholds.items()}
    cohorts = summarise_cohorts(forecasts, thresholds)
    flagged = [cohort.cohort for cohort in cohorts if not cohort.is_threshold_met]
    if flagged:
        get_logger().warning("forecast_cohorts_flagged", cohorts=flagged, snapshot_id=event.snapshot_id)
    target = forecasts["target_quarter"].min() if forecasts.height else None
    artifact_dir = settings.processed_dir / "forecasts" / forecast_run_id
    with tracer.start_as_current_span("forecast.store_model_artifacts"):
        await asyncio.to_thread(store_artifacts, artifact_dir, series, forecasts, event)
    tiers = [
        TierForecast(
            tier=row["tier"],
            metric=row["metric"],
            point=row["point"],
            lower_80=row["lower_80"],
            upper_80=row["upper_80"],
            model=row["model"],
        )
        for row in svr_rm.filter(pl.col("cohort") == "overall").sort("tier", "metric").iter_rows(named=True)
    ]
    published = ForecastPublished(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        forecast_run_id=forecast_run_id,
        target_quarter=target,
        cohorts=cohorts,
        tiers=tiers,
        tables=["forecast.svr_rm", "forecast.c2", "forecast.sellout"],
        artifact_path=str(artifact_dir.relative_to(settings.data_dir)),
        workbook=event.workbook,
        quality=event.quality,
    )
    with tracer.start_as_current_span("forecast.publish_forecast_outputs"):
        async with pool.acquire() as connection, connection.transaction():
            await warehouse.replace_forecasts(
                connection, snapshot_id=event.snapshot_id, svr_rm=svr_rm, c2=c2, sellout=sellout
            )
            await warehouse.record_run(
                connection,
                {
                    "forecast_run_id": forecast_run_id,
                    "run_id": event.run_id,
                    "snapshot_id": event.snapshot_id,
                    "target_quarter": target,
                    "series_count": forecasts.height,
                    "cohorts": [c.model_dump() for c in cohorts],
                    "artifact_path": published.artifact_path,
                },
            )
            await warehouse.clear_work(connection, forecast_run_id)
            await db.record_completion(
                connection,
                snapshot_id=event.snapshot_id,
                stage="forecast",
                run_id=event.run_id,
                subject=bus.FORECAST_PUBLISHED,
                event_json=published.model_dump_json(),
            )
    details = {
        "forecast_run_id": forecast_run_id,
        "batches": len(batches),
        "workers": done.workers,
        "batch_seconds": round(done.seconds, 3),
        "flagged_cohorts": flagged,
    }
    return StageOutcome(subject=bus.FORECAST_PUBLISHED, event=published, rows=forecasts.height, details=details)


async def publish_batches(service: ForecastService, batches: Sequence[WorkBatch]) -> None:
    """Put a run's batches on the work queue; a batch published twice is dropped by its Nats-Msg-Id."""
    for batch in batches:
        await service.broker.publish(
            batch.model_dump_json(),
            batch.subject,
            headers={"Nats-Msg-Id": batch.message_id},
            stream=FORECAST_WORK_STREAM,
            correlation_id=batch.run_id,
        )


async def collect_results(
    pool: asyncpg.Pool, forecast_run_id: str, batch_count: int, *, wait_seconds: float
) -> tuple[list[SeriesForecast], warehouse.WorkResults]:
    """Wait (without blocking the loop) until every batch of the run is in, then read their forecasts."""
    log = get_logger().bind(forecast_run_id=forecast_run_id)
    started = time.monotonic()
    last_log = started
    while True:
        progress = await warehouse.work_progress(pool, forecast_run_id)
        if progress.errors:
            raise SynoError(
                f"{len(progress.errors)} forecast batch(es) failed: " + "; ".join(progress.errors[:3]),
                code="forecast_batch_failed",
            )
        if progress.done >= batch_count:
            break
        now = time.monotonic()
        if now - started > wait_seconds:
            raise TransientError(
                f"only {progress.done} of {batch_count} forecast batches came back within {wait_seconds:.0f} s;"
                " is a forecast replica running?",
                code="forecast_work_timeout",
            )
        if now - last_log >= PROGRESS_LOG_SECONDS:
            log.info("forecast_batches_waiting", done=progress.done, batches=batch_count)
            last_log = now
        await asyncio.sleep(POLL_SECONDS)
    done = await warehouse.fetch_work_results(pool, forecast_run_id)
    parts = await asyncio.to_thread(lambda: [BATCH_RESULTS.validate_json(payload) for payload in done.payloads])
    return [result for part in parts for result in part], done


async def run_batch(pool: asyncpg.Pool, runner: BatchRunner, batch: WorkBatch) -> None:
    """Evaluate one batch and stage its forecasts (or its error) for the run's coordinator."""
    log = get_logger().bind(
        run_id=batch.run_id,
        snapshot_id=batch.snapshot_id,
        forecast_run_id=batch.forecast_run_id,
        batch_no=batch.batch_no,
        worker=runner.name,
    )
    if await warehouse.has_batch_result(pool, batch.forecast_run_id, batch.batch_no):
        log.info("forecast_batch_skipped", reason="already done (redelivery)")
        return
    started = time.perf_counter()
    payload: str | None = None
    error_text: str | None = None
    with tracer.start_as_current_span("forecast.evaluate_batch") as span:
        span.set_attribute("syno.snapshot_id", batch.snapshot_id)
        span.set_attribute("syno.batch_no", batch.batch_no)
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
        batch_no=batch.batch_no,
        series_count=len(batch.series),
        payload=payload,
        error=error_text,
        worker=runner.name,
        seconds=seconds,
    )
    log.info("forecast_batch_done", series=len(batch.series), seconds=round(seconds, 3), failed=error_text is not None)


def store_artifacts(folder: Path, series: pl.DataFrame, forecasts: pl.DataFrame, event: MartsReady) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    series.write_parquet(folder / "training_set.parquet")
    forecasts.write_parquet(folder / "forecasts.parquet")
    provenance = {
        "snapshot_id": event.snapshot_id,
        "run_id": event.run_id,
        "latest_complete_quarter": str(event.latest_complete_quarter),
        "dbt_invocation_id": event.dbt_invocation_id,
    }
    (folder / "provenance.json").write_text(json.dumps(provenance, indent=2))
