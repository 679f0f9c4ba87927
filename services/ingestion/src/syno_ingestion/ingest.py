"""One file through ingestion, on the stage protocol every stage shares.

Fingerprint, then either a duplicate (recorded as information, kept aside, nothing published) or
the stage's work under `run_stage_input`: split every sheet to parquet, record the manifest and
the completion in one transaction, keep the file beside its sheets, publish workbook.landed. A
file that breaks the contract is quarantined with its reason and reported once on pipeline.failed;
a transient failure is retried with spaced, bounded attempts, then the file is quarantined too.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from opentelemetry import metrics, trace

from syno_ingestion import manifest, share
from syno_ingestion.settings import IngestionService
from syno_ingestion.validation import snapshot_delta
from syno_ingestion.workbook import SheetParquet, split_sheets
from syno_shared import bus, db, faults
from syno_shared.contract import CONTRACT_VERSION
from syno_shared.errors import InputRejected, SynoError
from syno_shared.events import SheetLanded, WorkbookLanded
from syno_shared.fingerprint import file_sha256, mapping_versions
from syno_shared.logging import get_logger
from syno_shared.stage import RetryLater, StageFailed, StageInput, StageOutcome, run_stage_input

tracer = trace.get_tracer("syno.ingestion")
meter = metrics.get_meter("syno.ingestion")
files_counter = meter.create_counter("syno_ingestion_files", description="Workbooks seen, by outcome")
rows_counter = meter.create_counter("syno_ingestion_rows", description="Data rows landed, by sheet")
stage_seconds = meter.create_histogram("syno_stage_seconds", unit="s", description="Stage duration")


@dataclass(frozen=True)
class FileOutcome:
    """What became of one file: landed, duplicate, quarantined, or to be retried after `retry_after` seconds."""

    status: Literal["landed", "duplicate", "quarantined", "retry"]
    snapshot_id: str
    retry_after: float | None = None


async def ingest_file(service: IngestionService, path: Path, *, attempt: int = 1) -> FileOutcome:
    """Take one stable file from the share; the span opened here is the root of the workbook's trace."""
    run_id = uuid.uuid4().hex
    with tracer.start_as_current_span("ingestion.workbook", attributes={"syno.file_name": path.name}) as span:
        started = time.perf_counter()
        snapshot_id = await asyncio.to_thread(file_sha256, path)
        span.set_attribute("syno.snapshot_id", snapshot_id)
        span.set_attribute("syno.run_id", run_id)
        fingerprint_seconds = time.perf_counter() - started

        existing = await manifest.find_snapshot(service.pool, snapshot_id)
        if existing is not None and not (service.settings.data_dir / existing["stored_path"]).exists():
            # Accepted and committed, then the process died before the file left the share: finish the move.
            share.move(
                path, share.inside(service.settings.data_dir, service.settings.data_dir / existing["stored_path"])
            )
            get_logger().info("workbook_move_finished", file_name=path.name, snapshot_id=snapshot_id)
            return FileOutcome("landed", snapshot_id)
        if existing is not None:
            await keep_duplicate(service, path, snapshot_id, existing)
            return FileOutcome("duplicate", snapshot_id)

        stage_input = StageInput(run_id=run_id, snapshot_id=snapshot_id, reference=path.name, delivery=attempt)
        result = await run_stage_input(
            service.context,
            stage_input=stage_input,
            work=lambda: land_workbook(service, path, run_id, snapshot_id, fingerprint_seconds),
        )
    if isinstance(result, RetryLater):
        files_counter.add(1, {"outcome": "retry"})
        return FileOutcome("retry", snapshot_id, retry_after=result.delay)
    if isinstance(result, StageOutcome):
        stage_seconds.record(time.perf_counter() - started, {"stage": "ingestion"})
        return FileOutcome("landed", snapshot_id)
    if isinstance(result, StageFailed) and path.exists():  # not the contract (it quarantines its own): never again
        await quarantine(
            service,
            path,
            snapshot_id,
            run_id,
            SynoError(
                f"ingestion failed {attempt} times on this file; see ops.stage_runs for the errors", code="gave_up"
            ),
        )
    return FileOutcome("quarantined", snapshot_id)


async def keep_duplicate(
    service: IngestionService, path: Path, snapshot_id: str, existing: manifest.SnapshotRow
) -> None:
    """A repeat of an accepted snapshot: information, not a failure. Kept aside, recorded, never processed again."""
    settings = service.settings
    kept = share.keep_duplicate(settings.data_dir, path, snapshot_id)
    message = (
        f"'{path.name}' has the same content as '{existing['file_name']}' accepted at "
        f"{existing['accepted_at']:%Y-%m-%d %H:%M} UTC; not processed again (use `syno replay` to force)"
    )
    await manifest.record_file(
        service.pool,
        file_name=path.name,
        outcome="duplicate",
        snapshot_id=snapshot_id,
        size_bytes=kept.stat().st_size,
        reason_code="duplicate_snapshot",
        message=message,
        stored_path=str(kept.relative_to(settings.data_dir)),
    )
    files_counter.add(1, {"outcome": "duplicate"})
    get_logger().info("workbook_duplicate", file_name=path.name, snapshot_id=snapshot_id, message=message)


async def quarantine(service: IngestionService, path: Path, snapshot_id: str, run_id: str, error: SynoError) -> None:
    settings = service.settings
    size = path.stat().st_size
    kept = share.quarantine(
        settings.data_dir,
        path,
        code=error.code,
        message=error.message,
        details={"snapshot_id": snapshot_id, "size_bytes": size, "run_id": run_id},
    )
    await manifest.record_file(
        service.pool,
        file_name=path.name,
        outcome="quarantined",
        snapshot_id=snapshot_id,
        size_bytes=size,
        reason_code=error.code,
        message=error.message,
        stored_path=str(kept.relative_to(settings.data_dir)),
    )
    files_counter.add(1, {"outcome": "quarantined"})
    get_logger().warning("workbook_quarantined", file_name=path.name, code=error.code, error=error.message)


async def land_workbook(
    service: IngestionService, path: Path, run_id: str, snapshot_id: str, fingerprint_seconds: float
) -> StageOutcome:
    """The stage's work: sheets to parquet, manifest and completion in one transaction, the file kept aside."""
    settings, pool = service.settings, service.pool
    size = path.stat().st_size
    out_dir = share.inside(settings.data_dir, settings.processed_dir / "ingestion" / snapshot_id)
    split_started = time.perf_counter()
    try:
        with tracer.start_as_current_span("ingestion.split_sheets"):
            sheets = await asyncio.to_thread(split_sheets, path, out_dir)
    except InputRejected as error:
        await quarantine(service, path, snapshot_id, run_id, error)
        raise
    split_seconds = time.perf_counter() - split_started
    faults.at("ingestion.after_split")

    landed_sheets = [landed_sheet(sheet, settings.data_dir) for sheet in sheets]
    sheet_summary = {
        sheet.name: {"rows": sheet.rows, "columns": sheet.columns, "parquet_path": sheet.parquet_path}
        for sheet in landed_sheets
    }
    previous = await manifest.previous_snapshot(pool)
    delta = snapshot_delta({"size_bytes": size, "sheets": sheet_summary}, previous)
    stored_path = share.accepted_path(settings.data_dir, path, snapshot_id)
    event = WorkbookLanded(
        run_id=run_id,
        snapshot_id=snapshot_id,
        file_name=path.name,
        path=str(stored_path.relative_to(settings.data_dir)),
        size_bytes=size,
        delta=delta,
        sheets=landed_sheets,
        contract_version=CONTRACT_VERSION,
        mapping_versions=mapping_versions(settings.mapping_table_dir),
    )
    timings = {"fingerprint": fingerprint_seconds, "split": split_seconds}
    async with pool.acquire() as connection, connection.transaction():
        await manifest.insert_manifest(
            connection,
            event,
            sheets=sheet_summary,
            cell_errors={sheet.sheet.name: sheet.cell_errors for sheet in sheets if sheet.cell_errors},
            timings=timings,
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
    faults.at("ingestion.after_manifest")
    share.move(path, stored_path)
    files_counter.add(1, {"outcome": "accepted"})
    for sheet in landed_sheets:
        rows_counter.add(sheet.rows, {"sheet": sheet.name})
    get_logger().info("workbook_landed", file_name=path.name, sheets={s.name: s.rows for s in landed_sheets})
    return StageOutcome(
        subject=bus.WORKBOOK_LANDED,
        event=event,
        rows=sum(sheet.rows for sheet in landed_sheets),
        details={"timings": timings},
    )


def landed_sheet(sheet: SheetParquet, data_dir: Path) -> SheetLanded:
    return SheetLanded(
        name=sheet.sheet.name,
        kind=sheet.sheet.kind,
        year=sheet.sheet.year,
        rows=sheet.rows,
        columns=sheet.columns,
        parquet_path=str(sheet.parquet_path.relative_to(data_dir)),
    )
