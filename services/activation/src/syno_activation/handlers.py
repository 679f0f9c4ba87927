"""Activation: forecast.published -> storylines, dashboards, notifications, lineage -> activation.completed.

Every pipeline.failed becomes an alert. Summaries, Metabase refreshes and alerts leave through the outbox
(`outbox`, `deliverer`), so a redelivered event never sends them twice. A failed delivery (Metabase down,
Slack refusing) is recorded, retried by the outbox and reported, never a reason to lose the run.
"""

from __future__ import annotations

from faststream.nats.annotations import NatsMessage
from opentelemetry import trace

from syno_activation import warehouse
from syno_activation.accuracy import accuracy_drops
from syno_activation.deliverer import deliver, queued, results
from syno_activation.lineage import emit_pipeline_lineage
from syno_activation.outbox import message_entries, run_entries
from syno_activation.rendering import alert_message, summary_message
from syno_activation.report import build_report
from syno_activation.settings import ActivationService
from syno_activation.summary import build_run_summary, trace_url
from syno_shared import bus, faults
from syno_shared.events import PUBLISHED, ActivationCompleted, ForecastPublished, PipelineFailed
from syno_shared.logging import get_logger
from syno_shared.stage import StageOutcome, run_stage

tracer = trace.get_tracer("syno.activation")


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def register(service: ActivationService) -> None:
    @service.subscriber(bus.FORECAST_PUBLISHED, event=ForecastPublished)
    async def on_forecast_published(event: ForecastPublished, message: NatsMessage) -> None:
        await run_stage(service.context, event_in=event, message=message, work=lambda: activate(service, event))

    @service.subscriber(bus.PIPELINE_FAILED, durable_suffix="alerts", event=PipelineFailed)
    async def on_pipeline_failed(failure: PipelineFailed) -> None:
        await alert(service, failure)


async def alert(service: ActivationService, failure: PipelineFailed) -> None:
    """Queue the alert in the outbox with its row in ops.alerts, then send it: once per failed input, however
    often the pipeline.failed is delivered."""
    settings, pool = service.settings.activation, service.pool
    channels = settings.channels()
    with tracer.start_as_current_span("activation.alert"):
        message = alert_message(failure, trace_url=trace_url(settings.grafana_url, current_trace_id()))
        entries = message_entries(
            run_id=failure.run_id,
            snapshot_id=failure.snapshot_id,
            kind="alert",
            message=message,
            channels=channels.alert_channels,
            reference=failure.input_reference,
        )
        await warehouse.record_alert(pool, failure, entries, [queued(entry.key) for entry in entries])
        delivered = await deliver(pool, channels, [entry.key for entry in entries])
        if any(item.is_attempt for item in delivered):
            await warehouse.record_alert_delivered(pool, failure, results(delivered, "alert"))
    get_logger().warning(
        "pipeline_failed_alert",
        stage=failure.stage,
        code=failure.reason_code,
        error=failure.message,
        run_id=failure.run_id,
        snapshot_id=failure.snapshot_id,
        sent=[item.result.target for item in delivered if item.is_attempt and item.result.is_ok],
    )


async def activate(service: ActivationService, event: ForecastPublished) -> StageOutcome:
    """Storylines, the summary and the Metabase refresh queued in the outbox, and the completion: one transaction;
    then the queued deliveries are sent and their results recorded on the completion."""
    settings, pool = service.settings.activation, service.pool
    channels = settings.channels()
    with tracer.start_as_current_span("activation.storylines"):
        inputs = await warehouse.fetch_inputs(
            pool, marts_schema=event.marts_schema, forecast_run_id=event.forecast_run_id
        )
        report = build_report(inputs, target_quarter=event.target_quarter, rules=settings.storyline_rules())

    previous = await warehouse.previous_accuracy(pool, forecast_run_id=event.forecast_run_id)
    drops = accuracy_drops(event.cohorts, previous, margin=settings.accuracy_margin)
    summary = build_run_summary(
        forecast=event,
        report=report,
        grafana_url=settings.grafana_url,
        trace_id=current_trace_id(),
        dashboards=settings.dashboard_links,
        accuracy_drops=drops,
    )
    is_rehearsal = event.publication == "rehearsal"  # `syno smoke`: storylines written, nothing sent
    # The dashboards show the published snapshot: refreshed only when this run changed it (not kept aside).
    is_shown = event.publication in PUBLISHED
    entries = run_entries(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        summary=summary_message(summary),
        notify_channels=[] if is_rehearsal else channels.summary_channels,
        metabase_channel=channels.metabase_channel if is_shown else None,
    )

    with tracer.start_as_current_span("activation.emit_lineage"):
        lineage = (
            None
            if is_rehearsal
            else await emit_pipeline_lineage(
                settings.lineage.transport_config(), run_id=event.run_id, snapshot_id=event.snapshot_id
            )
        )

    recorded = ActivationCompleted(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        storylines=report.storylines.height,
        dashboards=[queued(entry.key) for entry in entries if entry.key.kind == "metabase"],
        notifications=[queued(entry.key) for entry in entries if entry.key.kind == "summary"],
        lineage=lineage,
    )
    activation_log_id = await warehouse.record_run(
        pool, storylines=report.storylines, entries=entries, completed=recorded, forecast=event
    )
    faults.at("activation.queued")  # recorded, nothing sent: after a crash here the outbox sweep sends it

    with tracer.start_as_current_span("activation.deliver"):
        delivered = await deliver(pool, channels, [entry.key for entry in entries])
    completed = recorded.model_copy(
        update={"dashboards": results(delivered, "metabase"), "notifications": results(delivered, "summary")}
    )
    await warehouse.record_delivered(pool, activation_log_id, completed)
    get_logger().info(
        "activation_summary",
        target_quarter=str(event.target_quarter),
        narrated_quarter=str(report.quarter),
        storylines=completed.storylines,
        flagged=[cohort.cohort for cohort in event.cohorts if not cohort.is_threshold_met],
        accuracy_worse=[drop.cohort for drop in drops],
        delivered=[item.result.target for item in delivered if item.is_attempt and item.result.is_ok],
        not_delivered_now=[item.result.target for item in delivered if not (item.is_attempt and item.result.is_ok)],
    )
    return StageOutcome(subject=bus.ACTIVATION_COMPLETED, event=completed, rows=completed.storylines)
