"""Activation: forecast.published -> storylines, dashboards, notifications, lineage -> activation.completed.

Every pipeline.failed becomes an alert. A failed delivery (Metabase down, Slack refusing) is recorded
and reported, never a reason to lose the run.
"""

from __future__ import annotations

from faststream.nats.annotations import NatsMessage
from opentelemetry import trace

from syno_activation import warehouse
from syno_activation.delivery import send_message_async
from syno_activation.lineage import emit_pipeline_lineage
from syno_activation.metabase import refresh_dashboards
from syno_activation.rendering import alert_message, summary_message
from syno_activation.report import build_report
from syno_activation.settings import ActivationService
from syno_activation.summary import build_run_summary, trace_url
from syno_shared import bus
from syno_shared.events import ActivationCompleted, ForecastPublished, PipelineFailed
from syno_shared.logging import get_logger
from syno_shared.stage import StageOutcome, parse_event, run_stage

tracer = trace.get_tracer("syno.activation")


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def register(service: ActivationService) -> None:
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


async def alert(service: ActivationService, failure: PipelineFailed) -> None:
    settings = service.settings.activation
    with tracer.start_as_current_span("activation.alert"):
        message = alert_message(failure, trace_url=trace_url(settings.grafana_url, current_trace_id()))
        notifications = await send_message_async(settings.notify_url_values(), message)
    await warehouse.record_alert(service.pool, failure, notifications)
    get_logger().warning(
        "pipeline_failed_alert",
        stage=failure.stage,
        code=failure.reason_code,
        error=failure.message,
        run_id=failure.run_id,
        snapshot_id=failure.snapshot_id,
        sent=[result.target for result in notifications if result.is_ok],
    )


async def activate(service: ActivationService, event: ForecastPublished) -> StageOutcome:
    settings, pool = service.settings.activation, service.pool
    with tracer.start_as_current_span("activation.storylines"):
        inputs = await warehouse.fetch_inputs(
            pool, marts_schema=event.marts_schema, forecast_run_id=event.forecast_run_id
        )
        report = build_report(inputs, target_quarter=event.target_quarter)
        await warehouse.replace_storylines(pool, event.snapshot_id, report.storylines)

    with tracer.start_as_current_span("activation.refresh_metabase"):
        dashboards = await refresh_dashboards(settings.metabase.client_config(), event.snapshot_id)

    with tracer.start_as_current_span("activation.notify"):
        summary = build_run_summary(
            forecast=event,
            report=report,
            grafana_url=settings.grafana_url,
            trace_id=current_trace_id(),
            dashboards=settings.dashboard_links,
        )
        notifications = await send_message_async(settings.notify_url_values(), summary_message(summary))

    with tracer.start_as_current_span("activation.emit_lineage"):
        lineage = await emit_pipeline_lineage(
            settings.lineage.transport_config(), run_id=event.run_id, snapshot_id=event.snapshot_id
        )

    completed = ActivationCompleted(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        storylines=report.storylines.height,
        dashboards=dashboards,
        notifications=notifications,
        lineage=lineage,
    )
    await warehouse.record_completed(pool, completed)
    get_logger().info(
        "activation_summary",
        target_quarter=str(event.target_quarter),
        narrated_quarter=str(report.quarter),
        storylines=completed.storylines,
        flagged=[cohort.cohort for cohort in event.cohorts if not cohort.is_threshold_met],
        delivered=[result.target for result in [*dashboards, *notifications] if result.is_ok],
        failed=[result.target for result in [*dashboards, *notifications] if not result.is_ok],
    )
    return StageOutcome(subject=bus.ACTIVATION_COMPLETED, event=completed, rows=completed.storylines)
