"""Forecast: marts.ready -> training sets, backtests, next-quarter forecasts -> forecast.published."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date
from pathlib import Path

import polars as pl
from faststream.nats.annotations import NatsMessage
from opentelemetry import trace

from syno_forecast import training, warehouse
from syno_forecast.engine import forecast_frame, summarise_cohorts
from syno_shared import bus, db
from syno_shared.errors import InputRejected
from syno_shared.events import ForecastPublished, MartsReady, TierForecast
from syno_shared.service import Service
from syno_shared.stage import StageOutcome, parse_event, run_stage

tracer = trace.get_tracer("syno.forecast")


def register(service: Service) -> None:
    @service.subscriber(bus.MARTS_READY)
    async def on_marts_ready(message: NatsMessage) -> None:
        event = await parse_event(service.context, MartsReady, message)
        if event is not None:
            await run_stage(
                service.context, event_in=event, message=message, work=lambda: forecast_snapshot(service, event)
            )


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
    return (
        pl.concat(parts)
        if parts
        else pl.DataFrame(schema={"series_id": pl.String, "quarter": pl.Date, "value": pl.Float64})
    )


def table_rows(forecasts: pl.DataFrame, *, forecast_run_id: str, snapshot_id: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split engine output into forecast.svr_rm and forecast.c2 rows."""
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
    svr_rm = parts.filter(pl.col("cohort") != "c2").select(
        *head,
        "cohort",
        pl.when(pl.col("cohort") == "overall").then(pl.col("key")).otherwise(pl.lit("TOTAL")).alias("tier"),
        pl.when(pl.col("cohort") == "customer").then(pl.col("key")).alias("customer"),
        *common,
    )
    c2 = parts.filter(pl.col("cohort") == "c2").select(
        *head, "cohort", pl.col("key").alias("service_family"), pl.lit(None, pl.String).alias("customer"), *common
    )
    return svr_rm, c2


async def forecast_snapshot(service: Service, event: MartsReady) -> StageOutcome:
    settings, pool = service.settings, service.pool
    if event.latest_complete_quarter is None:
        raise InputRejected("no complete quarter in the snapshot: nothing to train on", code="no_complete_quarter")
    forecast_run_id = uuid.uuid4().hex
    with tracer.start_as_current_span("forecast.fetch_training_set"):
        marts = await warehouse.fetch_marts(pool)
        series = training_set(marts, event.latest_complete_quarter, settings.forecast.top_customers)
    with tracer.start_as_current_span("forecast.backtest_and_forecast") as span:
        forecasts = await asyncio.to_thread(forecast_frame, series, event.latest_complete_quarter)
        span.set_attribute("syno.series", forecasts.height)
    svr_rm, c2 = table_rows(forecasts, forecast_run_id=forecast_run_id, snapshot_id=event.snapshot_id)
    cohorts = summarise_cohorts(forecasts)
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
        tables=["forecast.svr_rm", "forecast.c2"],
        artifact_path=str(artifact_dir.relative_to(settings.data_dir)),
    )
    with tracer.start_as_current_span("forecast.publish_forecast_outputs"):
        async with pool.acquire() as connection, connection.transaction():
            await warehouse.replace_forecasts(connection, snapshot_id=event.snapshot_id, svr_rm=svr_rm, c2=c2)
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
            await db.record_completion(
                connection,
                snapshot_id=event.snapshot_id,
                stage="forecast",
                run_id=event.run_id,
                subject=bus.FORECAST_PUBLISHED,
                event_json=published.model_dump_json(),
            )
    return StageOutcome(subject=bus.FORECAST_PUBLISHED, event=published, rows=forecasts.height)


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
