"""Transform: workbook.landed -> clean, load, dbt build, quality gates, lineage -> marts.ready."""

from __future__ import annotations

import asyncio

import polars as pl
from faststream.nats.annotations import NatsMessage
from opentelemetry import trace

from syno_shared import bus
from syno_shared.events import WorkbookLanded
from syno_shared.logging import get_logger
from syno_shared.service import Service
from syno_shared.stage import StageOutcome, parse_event, run_stage
from syno_transform import outcome, warehouse
from syno_transform.cleaning import clean_workbook
from syno_transform.dbt_runner import WarmDbt
from syno_transform.quality import load_gates, run_quality_gates
from syno_transform.reference import load_reference
from syno_transform.settings import TransformSettings

tracer = trace.get_tracer("syno.transform")


def register(service: Service[TransformSettings], dbt: WarmDbt) -> None:
    @service.subscriber(bus.WORKBOOK_LANDED)
    async def on_workbook_landed(message: NatsMessage) -> None:
        event = await parse_event(service.context, WorkbookLanded, message)
        if event is not None:
            await run_stage(
                service.context, event_in=event, message=message, work=lambda: transform_workbook(service, dbt, event)
            )


async def transform_workbook(service: Service[TransformSettings], dbt: WarmDbt, event: WorkbookLanded) -> StageOutcome:
    settings, pool = service.settings, service.pool
    with tracer.start_as_current_span("transform.prep_reference_data"):
        reference = await asyncio.to_thread(load_reference, settings.mapping_table_dir)
    with tracer.start_as_current_span("transform.clean_sales"):
        sheets = {sheet.name: pl.scan_parquet(settings.data_dir / sheet.parquet_path) for sheet in event.sheets}
        cleaned = await asyncio.to_thread(clean_workbook, sheets, snapshot_id=event.snapshot_id, reference=reference)
    previous_rows = await warehouse.previous_snapshot_rows(pool, event.snapshot_id)
    with tracer.start_as_current_span("transform.load_raw"):
        await warehouse.load_snapshot(pool, reference, event.snapshot_id, cleaned.lines)
    with tracer.start_as_current_span("transform.dbt_build"):
        build = await asyncio.to_thread(dbt.build, event.snapshot_id, settings.transform.dbt_variables())
    if failure := outcome.build_failure(build):
        raise failure
    with tracer.start_as_current_span("transform.run_quality_gates"):
        mart_totals = await warehouse.mart_quarter_totals(pool)
        gates = run_quality_gates(
            load_gates(), lines=cleaned.lines, previous_rows=previous_rows, mart_quarter_totals=mart_totals
        )
    mart_rows = await warehouse.mart_row_counts(pool, build.marts)
    ready = outcome.marts_ready(event, build=build, cleaned=cleaned, gates=gates, mart_rows=mart_rows)
    breaches = outcome.breached_gates(gates)
    with tracer.start_as_current_span("transform.publish_lineage"):
        pruned = await warehouse.record_run(
            pool,
            ready,
            unmapped=cleaned.unmapped,
            unconvertible=cleaned.unconvertible,
            mapping_versions=reference.versions,
            is_published=not breaches,
            keep_snapshots=settings.transform.raw_retention_snapshots,
        )
    if breaches:
        raise outcome.gates_failure(breaches)
    get_logger().bind(run_id=event.run_id, snapshot_id=event.snapshot_id).info(
        "marts_ready",
        rows=cleaned.lines.height,
        pruned_rows=pruned,
        dropped=cleaned.dropped,
        dbt_seconds=round(build.seconds, 2),
    )
    return StageOutcome(
        subject=bus.MARTS_READY,
        event=ready,
        rows=cleaned.lines.height,
        details={"dropped": cleaned.dropped, "dbt_seconds": build.seconds, "mart_rows": mart_rows},
    )
