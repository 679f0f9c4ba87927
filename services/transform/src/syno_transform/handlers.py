"""Transform: workbook.landed -> clean, gates on the lines, load, dbt build aside, gates on the build, publication
-> marts.ready.

One build at a time (the build lock, across replicas); a snapshot is published only when its build passed every
dbt test and quality gate, and only if its data is not older than the published snapshot's (unless forced).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, NoReturn

import asyncpg
import polars as pl
from faststream.nats.annotations import NatsMessage
from opentelemetry import trace

from syno_shared import bus
from syno_shared.errors import SynoError
from syno_shared.events import MartsReady, QualityGateResult, WorkbookLanded, resolve_inside
from syno_shared.logging import get_logger
from syno_shared.service import Service
from syno_shared.stage import StageOutcome, message_input, run_stage
from syno_transform import outcome, publication, snapshots, warehouse
from syno_transform.cleaning import CleanResult, clean_workbook
from syno_transform.dbt_runner import WarmDbt
from syno_transform.quality import load_gates, run_line_gates, run_mart_gates
from syno_transform.reference import Reference, load_reference
from syno_transform.settings import TransformSettings

tracer = trace.get_tracer("syno.transform")


def register(service: Service[TransformSettings], dbt: WarmDbt) -> None:
    @service.subscriber(bus.WORKBOOK_LANDED, event=WorkbookLanded)
    async def on_workbook_landed(event: WorkbookLanded, message: NatsMessage) -> None:
        replay = message_input(event, message)  # Syno-Force may publish older data; a rehearsal never publishes
        await run_stage(
            service.context,
            event_in=event,
            message=message,
            work=lambda: transform_workbook(
                service, dbt, event, is_forced=replay.is_forced, is_rehearsal=replay.is_rehearsal
            ),
        )


async def transform_workbook(
    service: Service[TransformSettings],
    dbt: WarmDbt,
    event: WorkbookLanded,
    *,
    is_forced: bool = False,
    is_rehearsal: bool = False,
) -> StageOutcome:
    settings = service.settings
    with tracer.start_as_current_span("transform.prep_reference_data"):
        reference = await asyncio.to_thread(load_reference, settings.mapping_table_dir)
    with tracer.start_as_current_span("transform.clean_sales"):
        sheets = {
            sheet.name: pl.scan_parquet(resolve_inside(settings.data_dir, sheet.parquet_path)) for sheet in event.sheets
        }
        cleaned = await asyncio.to_thread(clean_workbook, sheets, snapshot_id=event.snapshot_id, reference=reference)
    async with publication.build_lock(service.pool) as connection:  # one build at a time, across replicas
        run = await build_and_publish(
            service, dbt, connection, event, reference, cleaned, is_forced=is_forced, is_rehearsal=is_rehearsal
        )
    get_logger().bind(run_id=event.run_id, snapshot_id=event.snapshot_id).info(
        "marts_ready", rows=cleaned.lines.height, dropped=cleaned.dropped, **run.details
    )
    return StageOutcome(
        subject=bus.MARTS_READY,
        event=run.ready,
        rows=cleaned.lines.height,
        details={"dropped": cleaned.dropped, "mart_rows": run.ready.mart_rows, **run.details},
    )


async def build_and_publish(
    service: Service[TransformSettings],
    dbt: WarmDbt,
    connection: asyncpg.Connection,
    event: WorkbookLanded,
    reference: Reference,
    cleaned: CleanResult,
    *,
    is_forced: bool,
    is_rehearsal: bool = False,
) -> PublishedRun:
    """Under the build lock: gates on the lines, load, dbt build aside, gates on the build, then one transaction
    that records the run and, if the snapshot wins, publishes it. Any failure stops before publication."""
    settings, gates = service.settings.transform, load_gates()
    published = await publication.published_build(connection)
    # A rehearsal's small workbook is no successor of the published one: no row-count baseline to fall from.
    baseline = None if is_rehearsal else await warehouse.baseline_rows(connection, event.snapshot_id, published)
    line_gates = run_line_gates(gates, lines=cleaned.lines, previous_rows=baseline)
    if breaches := outcome.breached_gates(line_gates):
        await stop(connection, event, cleaned, line_gates, None, outcome.gates_failure(breaches))
    build_id, freshness = snapshots.new_build_id(event.snapshot_id), outcome.data_freshness(cleaned.lines)
    with tracer.start_as_current_span("transform.load_raw"):
        await warehouse.load_snapshot(connection, reference, event.snapshot_id, cleaned.lines)
    await publication.start_build(
        connection,
        build_id=build_id,
        snapshot_id=event.snapshot_id,
        run_id=event.run_id,
        data_freshness=freshness,
        landed_at=event.produced_at,
        rows_loaded=cleaned.lines.height,
    )
    with tracer.start_as_current_span("transform.dbt_build") as span:
        span.set_attribute("syno.build_id", build_id)
        build = await asyncio.to_thread(dbt.build, event.snapshot_id, settings.dbt_variables(), build_id)
    if failure := outcome.build_failure(build):
        await stop(connection, event, cleaned, line_gates, build_id, failure)
    with tracer.start_as_current_span("transform.run_quality_gates"):
        mart_totals = await warehouse.mart_quarter_totals(connection, build.marts_schema)
        checked = [*line_gates, *run_mart_gates(gates, lines=cleaned.lines, mart_quarter_totals=mart_totals)]
    if breaches := outcome.breached_gates(checked):
        await stop(connection, event, cleaned, checked, build_id, outcome.gates_failure(breaches))
    mart_rows = await warehouse.mart_row_counts(connection, build.marts_schema, build.marts)
    candidate = snapshots.SnapshotAge(data_freshness=freshness, landed_at=event.produced_at)
    choice = snapshots.publication(
        candidate, published.age if published else None, is_forced=is_forced, is_rehearsal=is_rehearsal
    )
    ready = outcome.marts_ready(
        event, build=build, cleaned=cleaned, gates=checked, mart_rows=mart_rows, publication=choice
    )
    with tracer.start_as_current_span("transform.publish"):
        pruned = await publication.with_publication_retries(
            connection,
            lambda connection: warehouse.record_run(
                connection,
                ready,
                build_id=build_id,
                marts=build.marts,
                previous=published,
                unmapped=cleaned.unmapped,
                unconvertible=cleaned.unconvertible,
                mapping_versions=reference.versions,
                keep_snapshots=settings.raw_retention_snapshots,
            ),
        )
    with tracer.start_as_current_span("transform.drop_old_builds"):
        dropped = await publication.drop_old_builds(connection, keep=settings.published_snapshots_kept)
    details = {"publication": choice, "build_id": build_id, "pruned_rows": pruned, "dropped_builds": dropped}
    return PublishedRun(ready=ready, details={**details, "dbt_seconds": round(build.seconds, 2)})


@dataclass(frozen=True)
class PublishedRun:
    """What a run that passed did: marts.ready, and how it went (publication, build, pruning) for the log."""

    ready: MartsReady
    details: dict[str, Any]


async def stop(
    connection: asyncpg.Connection,
    event: WorkbookLanded,
    cleaned: CleanResult,
    gates: list[QualityGateResult],
    build_id: str | None,
    failure: SynoError,
) -> NoReturn:
    """Record what the checks found (and that the build failed), publish nothing, and stop the run."""
    async with connection.transaction():
        await warehouse.record_checks(
            connection,
            run_id=event.run_id,
            snapshot_id=event.snapshot_id,
            gates=gates,
            unmapped=cleaned.unmapped,
            unconvertible=cleaned.unconvertible,
        )
        if build_id is not None:
            await publication.finish_build(connection, build_id, is_passed=False)
    raise failure
