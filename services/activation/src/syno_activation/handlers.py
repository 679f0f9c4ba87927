"""Activation: forecast.published -> storylines, dashboards, notifications, catalog -> activation.completed.

Also turns every pipeline.failed into an alert.
"""

from __future__ import annotations

import polars as pl
from faststream.nats.annotations import NatsMessage
from opentelemetry import trace

from syno_activation import warehouse
from syno_activation.storylines import build_storylines
from syno_shared import bus, db
from syno_shared.events import ActivationCompleted, ForecastPublished, PipelineFailed
from syno_shared.logging import get_logger
from syno_shared.service import Service
from syno_shared.stage import StageOutcome, parse_event, run_stage

tracer = trace.get_tracer("syno.activation")

EMPTY_FORECAST = pl.DataFrame(schema={"target_quarter": pl.Date, "region": pl.String, "forecast_revenue": pl.Float64})


def register(service: Service) -> None:
    @service.subscriber(bus.FORECAST_PUBLISHED)
    async def on_forecast_published(message: NatsMessage) -> None:
        event = await parse_event(service.context, ForecastPublished, message)
        if event is not None:
            await run_stage(service.context, event_in=event, message=message, work=lambda: activate(service, event))

    @service.subscriber(bus.PIPELINE_FAILED, durable_suffix="alerts")
    async def on_pipeline_failed(message: NatsMessage) -> None:
        failure = await parse_event(service.context, PipelineFailed, message)
        if failure is None:
            return
        get_logger().warning(
            "pipeline_failed_alert",
            stage=failure.stage,
            code=failure.reason_code,
            error=failure.message,
            run_id=failure.run_id,
            snapshot_id=failure.snapshot_id,
        )
        await warehouse.record_alert(service.pool, {**failure.model_dump(), "notifications": []})


async def activate(service: Service, event: ForecastPublished) -> StageOutcome:
    pool = service.pool
    with tracer.start_as_current_span("activation.storylines"):
        snapshot = await warehouse.fetch_activation_snapshot(pool)
        storylines = build_storylines(snapshot, EMPTY_FORECAST).collect() if snapshot.height else pl.DataFrame()
    completed = ActivationCompleted(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        storylines=storylines.height,
        dashboards=[],
        notifications=[],
        catalog=None,
    )
    async with pool.acquire() as connection, connection.transaction():
        await warehouse.replace_storylines(connection, event.snapshot_id, storylines)
        await warehouse.record_activation(
            connection,
            {
                "run_id": event.run_id,
                "snapshot_id": event.snapshot_id,
                "storylines": storylines.height,
                "dashboards": [],
                "notifications": [],
                "catalog": None,
            },
        )
        await db.record_completion(
            connection,
            snapshot_id=event.snapshot_id,
            stage="activation",
            run_id=event.run_id,
            subject=bus.ACTIVATION_COMPLETED,
            event_json=completed.model_dump_json(),
        )
    get_logger().info(
        "activation_summary",
        target_quarter=str(event.target_quarter),
        storylines=storylines.height,
        tiers={f"{t.tier}/{t.metric}": round(t.point, 1) for t in event.tiers},
        flagged=[c.cohort for c in event.cohorts if not c.is_threshold_met],
    )
    return StageOutcome(subject=bus.ACTIVATION_COMPLETED, event=completed, rows=storylines.height)
