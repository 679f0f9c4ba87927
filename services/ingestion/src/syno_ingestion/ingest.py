"""One file through ingestion: fingerprint, duplicate check, contract, parquet, manifest, event."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from opentelemetry import metrics, trace

from syno_ingestion import manifest, share
from syno_ingestion.validation import snapshot_delta
from syno_ingestion.workbook import split_excel_tabs
from syno_shared import bus, db
from syno_shared.contract import CONTRACT_VERSION
from syno_shared.errors import InputRejected
from syno_shared.events import PipelineFailed, SheetLanded, WorkbookLanded
from syno_shared.fingerprint import file_sha256, mapping_versions
from syno_shared.logging import get_logger
from syno_shared.service import Service

tracer = trace.get_tracer("syno.ingestion")
meter = metrics.get_meter("syno.ingestion")
files_counter = meter.create_counter("syno_ingestion_files", description="Workbooks seen, by outcome")
rows_counter = meter.create_counter("syno_ingestion_rows", description="Data rows landed, by sheet")
stage_seconds = meter.create_histogram("syno_stage_seconds", unit="s", description="Stage duration")


async def ingest_file(service: Service, path: Path) -> WorkbookLanded | PipelineFailed:
    """Take one stable file from the share; the span opened here is the root of the workbook's trace."""
    settings, pool = service.settings, service.pool
    run_id = uuid.uuid4().hex
    log = get_logger().bind(run_id=run_id, file_name=path.name)
    started = time.perf_counter()
    with tracer.start_as_current_span("ingestion.workbook", attributes={"syno.file_name": path.name}) as span:
        size = path.stat().st_size
        snapshot_id = await asyncio.to_thread(file_sha256, path)
        span.set_attribute("syno.snapshot_id", snapshot_id)
        span.set_attribute("syno.run_id", run_id)
        log = log.bind(snapshot_id=snapshot_id)
        fingerprint_seconds = time.perf_counter() - started

        existing = await manifest.find_snapshot(pool, snapshot_id)
        if existing is not None:
            kept = share.keep_duplicate(settings.data_dir, path, snapshot_id)
            message = (
                f"'{path.name}' has the same content as '{existing['file_name']}' accepted at "
                f"{existing['accepted_at']:%Y-%m-%d %H:%M} UTC; not processed again (use `syno replay` to force)"
            )
            await manifest.record_file(
                pool,
                file_name=path.name,
                outcome="duplicate",
                snapshot_id=snapshot_id,
                size_bytes=size,
                reason_code="duplicate_snapshot",
                message=message,
                stored_path=str(kept.relative_to(settings.data_dir)),
            )
            files_counter.add(1, {"outcome": "duplicate"})
            log.info("workbook_duplicate", previous=existing["file_name"])
            return await _publish_failure(service, run_id, snapshot_id, "duplicate_snapshot", message, path.name)

        stage_run_id = await db.stage_started(
            pool, run_id=run_id, snapshot_id=snapshot_id, stage="ingestion", delivery=1
        )
        out_dir = share.inside(settings.data_dir, settings.processed_dir / "ingestion" / snapshot_id)
        try:
            split_started = time.perf_counter()
            with tracer.start_as_current_span("ingestion.split_excel_tabs"):
                sheets = await asyncio.to_thread(split_excel_tabs, path, out_dir)
            split_seconds = time.perf_counter() - split_started
        except InputRejected as error:
            kept = share.quarantine(
                settings.data_dir,
                path,
                code=error.code,
                message=error.message,
                details={"snapshot_id": snapshot_id, "size_bytes": size, "run_id": run_id},
            )
            await manifest.record_file(
                pool,
                file_name=path.name,
                outcome="quarantined",
                snapshot_id=snapshot_id,
                size_bytes=size,
                reason_code=error.code,
                message=error.message,
                stored_path=str(kept.relative_to(settings.data_dir)),
            )
            await db.stage_finished(
                pool, stage_run_id, status="failed", error_code=error.code, error_message=error.message
            )
            files_counter.add(1, {"outcome": "quarantined"})
            log.warning("workbook_quarantined", code=error.code, error=error.message)
            return await _publish_failure(service, run_id, snapshot_id, error.code, error.message, path.name)

        stored = share.keep_accepted(settings.data_dir, path, snapshot_id)
        landed_sheets = [
            SheetLanded(
                name=sheet.sheet.name,
                kind=sheet.sheet.kind,
                year=sheet.sheet.year,
                rows=sheet.rows,
                columns=sheet.columns,
                parquet_path=str(sheet.parquet_path.relative_to(settings.data_dir)),
            )
            for sheet in sheets
        ]
        sheet_summary = {
            sheet.name: {"rows": sheet.rows, "columns": sheet.columns, "parquet_path": sheet.parquet_path}
            for sheet in landed_sheets
        }
        previous = await manifest.previous_snapshot(pool)
        delta = snapshot_delta({"size_bytes": size, "sheets": sheet_summary}, previous)
        versions = mapping_versions(settings.mapping_table_dir)
        event = WorkbookLanded(
            run_id=run_id,
            snapshot_id=snapshot_id,
            file_name=path.name,
            path=str(stored.relative_to(settings.data_dir)),
            size_bytes=size,
            size_delta_bytes=delta.get("size_bytes"),
            sheets=landed_sheets,
            contract_version=CONTRACT_VERSION,
            mapping_versions=versions,
        )
        total_rows = sum(sheet.rows for sheet in landed_sheets)
        timings = {"fingerprint": fingerprint_seconds, "split": split_seconds, "total": time.perf_counter() - started}
        cell_errors = {sheet.sheet.name: sheet.cell_errors for sheet in sheets if sheet.cell_errors}
        async with pool.acquire() as connection, connection.transaction():
            await manifest.insert_manifest(
                connection,
                {
                    "snapshot_id": snapshot_id,
                    "run_id": run_id,
                    "file_name": path.name,
                    "stored_path": event.path,
                    "size_bytes": size,
                    "delta": delta,
                    "sheets": sheet_summary,
                    "cell_errors": cell_errors,
                    "contract_version": CONTRACT_VERSION,
                    "mapping_versions": versions,
                    "timings": timings,
                },
            )
            await manifest.record_file(
                connection,
                file_name=path.name,
                outcome="accepted",
                snapshot_id=snapshot_id,
                size_bytes=size,
                stored_path=event.path,
            )
            await db.record_completion(
                connection,
                snapshot_id=snapshot_id,
                stage="ingestion",
                run_id=run_id,
                subject=bus.WORKBOOK_LANDED,
                event_json=event.model_dump_json(),
            )
        await db.stage_finished(pool, stage_run_id, status="succeeded", rows=total_rows, details={"timings": timings})
        await bus.publish_event(service.broker, bus.WORKBOOK_LANDED, event, stream_name=settings.stream_name)
        files_counter.add(1, {"outcome": "accepted"})
        for sheet in landed_sheets:
            rows_counter.add(sheet.rows, {"sheet": sheet.name})
        stage_seconds.record(timings["total"], {"stage": "ingestion"})
        log.info("workbook_landed", sheets={s.name: s.rows for s in landed_sheets}, seconds=round(timings["total"], 3))
        return event


async def _publish_failure(
    service: Service, run_id: str, snapshot_id: str, code: str, message: str, file_name: str
) -> PipelineFailed:
    failure = PipelineFailed(
        run_id=run_id,
        snapshot_id=snapshot_id,
        stage="ingestion",
        reason_code=code,
        message=message,
        is_retryable=False,
        input_reference=file_name,
    )
    await bus.publish_event(
        service.broker, bus.PIPELINE_FAILED, failure, stream_name=service.settings.stream_name, attempt=run_id
    )
    return failure
