"""Activation: forecast.published -> storylines, dashboards, notifications, catalog -> activation.completed.

Every pipeline.failed becomes an alert. A failed delivery (Metabase down, Slack refusing) is
recorded and reported, never a reason to lose the run.
"""

from __future__ import annotations

import json

from faststream.nats.annotations import NatsMessage
from opentelemetry import trace

from syno_activation import config, warehouse
from syno_activation.catalog import emit_stage_lineage_async
from syno_activation.metabase import refresh_metabase
from syno_activation.notify import send_alert_async, send_summary_async
from syno_activation.report import build_report
from syno_activation.summary import build_run_summary, trace_url
from syno_shared import bus, db
from syno_shared.events import ActivationCompleted, DeliveryResult, ForecastPublished, PipelineFailed
from syno_shared.logging import get_logger
from syno_shared.service import Service
from syno_shared.settings import Settings
from syno_shared.stage import StageOutcome, parse_event, run_stage

tracer = trace.get_tracer("syno.activation")

STAGE_DATASETS = {
    "ingestion": ([], ["processed.ingestion"]),
    "transform": (["processed.ingestion", "mapping_table"], ["raw.sales_lines", "marts.svr_rm_quarterly"]),
    "forecast": (
        ["marts.svr_rm_quarterly", "marts.svr_rm_customer_quarterly", "marts.sellout_quarterly"],
        ["forecast.svr_rm", "forecast.c2", "forecast.sellout"],
    ),
    "activation": (["marts.commercial_activation_snapshot", "forecast.sellout"], ["activation.storylines"]),
}


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def register(service: Service[Settings]) -> None:
    @service.subscriber(bus.FORECAST_PUBLISHED)
    async def on_forecast_published(message: NatsMessage) -> None:
        event = await parse_event(service.context, ForecastPublished, message)
        if event is not None:
            await run_stage(service.context, event_in=event, message=message, work=lambda: activate(service, event))

    @service.subscriber(bus.PIPELINE_FAILED, durable_suffix="alerts")
    async def on_pipeline_failed(message: NatsMessage) -> None:
        failure = await parse_event(service.context, PipelineFailed, message)
        if failure is not None:
            await alert(service, failure)


async def alert(service: Service[Settings], failure: PipelineFailed) -> None:
    settings = service.settings.activation
    link = trace_url(settings.grafana_url, current_trace_id())
    with tracer.start_as_current_span("activation.alert"):
        results = await send_alert_async(config.notify_urls(settings), failure, trace_url=link)
    get_logger().warning(
        "pipeline_failed_alert",
        stage=failure.stage,
        code=failure.reason_code,
        error=failure.message,
        run_id=failure.run_id,
        snapshot_id=failure.snapshot_id,
        sent=[r.channel for r in results if r.ok],
    )
    notifications = [DeliveryResult(target=r.channel, is_ok=r.ok, detail=r.detail) for r in results]
    await warehouse.record_alert(service.pool, failure, notifications)


async def activate(service: Service[Settings], event: ForecastPublished) -> StageOutcome:
    settings, pool = service.settings.activation, service.pool
    with tracer.start_as_current_span("activation.storylines"):
        inputs = await warehouse.fetch_inputs(pool, event.forecast_run_id)
        report = build_report(inputs, target_quarter=event.target_quarter)
        await warehouse.replace_storylines(pool, event.snapshot_id, report.storylines)
        storylines = report.storylines

    with tracer.start_as_current_span("activation.refresh_metabase"):
        dashboards = []
        if settings.metabase.mode != "off":
            refreshed = await refresh_metabase(config.metabase_config(settings), event.snapshot_id)
            dashboards.append(
                DeliveryResult(target=f"metabase:{refreshed.method}", is_ok=refreshed.ok, detail=refreshed.reason)
            )

    with tracer.start_as_current_span("activation.notify"):
        summary = build_run_summary(
            forecast=event,
            report=report,
            grafana_url=settings.grafana_url,
            trace_id=current_trace_id(),
            dashboards=settings.dashboard_links,
        )
        sent = await send_summary_async(config.notify_urls(settings), summary)
        notifications = [DeliveryResult(target=r.channel, is_ok=r.ok, detail=r.detail) for r in sent]

    with tracer.start_as_current_span("activation.emit_lineage"):
        catalog = None
        if settings.lineage.transport != "off":
            results = []
            for stage, (stage_inputs, stage_outputs) in STAGE_DATASETS.items():
                results.append(
                    await emit_stage_lineage_async(
                        config.lineage_config(settings),
                        stage=stage,
                        run_id=f"{event.run_id}:{stage}",
                        parent_run_id=event.run_id,
                        event_type="COMPLETE",
                        inputs=stage_inputs,
                        outputs=stage_outputs,
                        snapshot_id=event.snapshot_id,
                    )
                )
            catalog = DeliveryResult(
                target=f"openlineage:{settings.lineage.transport}",
                is_ok=all(r.ok for r in results),
                detail="; ".join(r.detail for r in results if not r.ok) or f"{len(results)} run events",
            )

    completed = ActivationCompleted(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        storylines=storylines.height,
        dashboards=dashboards,
        notifications=notifications,
        lineage=catalog,
    )
    async with pool.acquire() as connection, connection.transaction():
        await warehouse.record_activation(connection, completed)
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
        notifications=json.dumps([n.model_dump() for n in notifications]),
    )
    return StageOutcome(subject=bus.ACTIVATION_COMPLETED, event=completed, rows=storylines.height)
