"""Transform: workbook.landed -> clean, load, dbt build, quality gates, lineage -> marts.ready."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
from faststream.nats.annotations import NatsMessage
from opentelemetry import trace

from syno_shared import bus, db
from syno_shared.errors import QualityGateFailed
from syno_shared.events import MartsReady, WorkbookLanded
from syno_shared.logging import get_logger
from syno_shared.quarters import latest_complete_quarter
from syno_shared.service import Service
from syno_shared.stage import StageOutcome, parse_event, run_stage
from syno_transform import warehouse
from syno_transform.cleaning import CleanResult, clean_sales
from syno_transform.dbt_runner import WarmDbt
from syno_transform.quality import load_gates, run_quality_gates
from syno_transform.reference import Reference, load_reference

tracer = trace.get_tracer("syno.transform")

MARTS = [
    "marts.sellout_quarterly",
    "marts.svr_rm_quarterly",
    "marts.svr_rm_customer_quarterly",
    "marts.c2_adoption_scorecard",
    "marts.commercial_activation_snapshot",
]


def register(service: Service, dbt: WarmDbt) -> None:
    @service.subscriber(bus.WORKBOOK_LANDED)
    async def on_workbook_landed(message: NatsMessage) -> None:
        event = await parse_event(service.context, WorkbookLanded, message)
        if event is not None:
            await run_stage(
                service.context, event_in=event, message=message, work=lambda: transform_workbook(service, dbt, event)
            )


def clean_workbook(event: WorkbookLanded, data_dir: Path, reference: Reference) -> list[CleanResult]:
    return [
        clean_sales(
            pl.scan_parquet(data_dir / sheet.parquet_path),
            sheet_name=sheet.name,
            snapshot_id=event.snapshot_id,
            reference=reference,
        )
        for sheet in event.sheets
    ]


async def transform_workbook(service: Service, dbt: WarmDbt, event: WorkbookLanded) -> StageOutcome:
    settings, pool = service.settings, service.pool
    log = get_logger().bind(run_id=event.run_id, snapshot_id=event.snapshot_id)
    with tracer.start_as_current_span("transform.prep_reference_data"):
        reference = await asyncio.to_thread(load_reference, settings.mapping_table_dir)
    with tracer.start_as_current_span("transform.clean_sales"):
        cleaned = await asyncio.to_thread(clean_workbook, event, settings.data_dir, reference)
    lines = pl.concat([result.lines for result in cleaned], how="vertical_relaxed")
    dropped = {
        reason: sum(result.dropped.get(reason, 0) for result in cleaned)
        for reason in sorted({key for result in cleaned for key in result.dropped})
    }
    previous_rows = await pool.fetchval(
        "select rows from ops.stage_runs where stage = 'transform' and status = 'succeeded'"
        " and snapshot_id <> $1 order by finished_at desc limit 1",
        event.snapshot_id,
    )
    with tracer.start_as_current_span("transform.load_raw"):
        async with pool.acquire() as connection, connection.transaction():
            await warehouse.load_reference(connection, reference)
            await warehouse.replace_snapshot_lines(connection, event.snapshot_id, lines)
    with tracer.start_as_current_span("transform.dbt_build"):
        build = await asyncio.to_thread(
            dbt.build, event.snapshot_id, {"top_customers": settings.transform.top_customers}
        )
    if not build.is_success:
        failing = ", ".join(build.failed_nodes) or build.error or "unknown"
        raise QualityGateFailed(
            f"dbt build failed ({build.tests_failed} tests failed): {failing}; the previous marts were kept",
            code="dbt_test_failed" if build.tests_failed else "dbt_build_failed",
        )
    with tracer.start_as_current_span("transform.run_quality_gates"):
        mart_totals = await warehouse.fetch_frame(
            pool,
            "select quarter, sum(revenue_usd)::float8 as revenue_usd from marts.sellout_quarterly group by quarter",
        )
        gates = run_quality_gates(
            load_gates(), lines=lines, previous_rows=previous_rows, mart_quarter_totals=mart_totals
        )
    mart_rows = await warehouse.mart_row_counts(pool, MARTS)
    freshness = lines.select(pl.col("invoice_date").max()).item()
    ready = MartsReady(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        dbt_invocation_id=build.invocation_id,
        models_built=build.models_built,
        tests_passed=build.tests_passed,
        tests_warned=build.tests_warned,
        tests_failed=build.tests_failed,
        mart_rows=mart_rows,
        quality_gates=gates,
        rows_loaded=lines.height,
        data_freshness=freshness,
        latest_complete_quarter=latest_complete_quarter(freshness),
    )
    breaches = [gate for gate in gates if not gate.passed and gate.severity == "error"]
    pruned = 0
    with tracer.start_as_current_span("transform.publish_lineage"):
        async with pool.acquire() as connection, connection.transaction():
            await warehouse.record_quality(connection, event.run_id, event.snapshot_id, gates)
            if not breaches:
                await warehouse.record_lineage(
                    connection,
                    run_id=event.run_id,
                    snapshot_id=event.snapshot_id,
                    rows=mart_rows,
                    freshness=freshness,
                    invocation_id=build.invocation_id,
                    mapping_versions=reference.versions,
                )
                await db.record_completion(
                    connection,
                    snapshot_id=event.snapshot_id,
                    stage="transform",
                    run_id=event.run_id,
                    subject=bus.MARTS_READY,
                    event_json=ready.model_dump_json(),
                )
                pruned = await warehouse.prune_snapshots(connection, keep=settings.transform.raw_retention_snapshots)
    if breaches:
        raise QualityGateFailed(
            "quality gates breached: " + "; ".join(f"{gate.name} ({gate.detail})" for gate in breaches),
            code="quality_gate_failed",
        )
    log.info("marts_ready", rows=lines.height, pruned_rows=pruned, dropped=dropped, dbt_seconds=round(build.seconds, 2))
    return StageOutcome(
        subject=bus.MARTS_READY,
        event=ready,
        rows=lines.height,
        details={"dropped": dropped, "dbt_seconds": build.seconds, "mart_rows": mart_rows},
    )
