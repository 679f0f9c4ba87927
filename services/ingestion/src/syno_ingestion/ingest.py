"""One file through ingestion, on the stage protocol every stage shares.

Take the file (a private copy, hashed as it is copied: the snapshot id), then either a duplicate
(recorded as information, kept aside, nothing published) or the stage's work under
`run_stage_input`: read the sales sheets to parquet in a child process with limits, record the
manifest and the completion in one transaction, keep the file beside its sheets, publish
workbook.landed. A file that breaks the contract or the limits is quarantined with its reason and
reported once on pipeline.failed; a transient failure is retried with spaced, bounded attempts,
then the file is quarantined too. A file that changes while it is taken or read was still being
written: nothing is recorded, and it is taken again once it stops changing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from opentelemetry import trace

from syno_ingestion import manifest, reader, share
from syno_ingestion.settings import IngestionService
from syno_ingestion.share import FileState, Taken
from syno_ingestion.validation import SheetParquet, snapshot_delta
from syno_shared import bus, db, faults, telemetry
from syno_shared.contract import CONTRACT_VERSION
from syno_shared.errors import InputRejected, SynoError
from syno_shared.events import SheetLanded, WorkbookLanded
from syno_shared.fingerprint import mapping_versions
from syno_shared.logging import get_logger
from syno_shared.stage import (
    RetryLater,
    StageFailed,
    StageInput,
    StageOutcome,
    publish_failure,
    run_stage_input,
)

tracer = trace.get_tracer("syno.ingestion")
files_counter = telemetry.counter(
    "syno.ingestion", "syno_ingestion_files", labels=("outcome",), description="Workbooks seen, by outcome"
)
rows_counter = telemetry.counter(
    "syno.ingestion", "syno_ingestion_rows", labels=("sheet",), description="Data rows landed, by sheet"
)
reader_peak_bytes = telemetry.histogram(
    "syno.ingestion",
    "syno_ingestion_reader_peak_bytes",
    unit="By",
    labels=("format",),
    description="Peak resident memory of the reader process",
)


@dataclass(frozen=True)
class FileOutcome:
    """What became of one file: landed, duplicate, quarantined, to be retried after `retry_after` seconds,
    changed (still being written: taken again once stable) or gone (removed before it was taken)."""

    status: Literal["landed", "duplicate", "quarantined", "retry", "changed", "gone"]
    snapshot_id: str
    retry_after: float | None = None


async def ingest_file(service: IngestionService, path: Path, seen: FileState, *, attempt: int = 1) -> FileOutcome:
    """Take one stable file from the share; the span opened here is the root of the workbook's trace."""
    run_id = uuid.uuid4().hex
    folder = share.work_folder(service.settings.data_dir, run_id)
    try:
        with tracer.start_as_current_span(
            "ingestion.workbook", attributes={"syno.file_name": share.display_name(path.name), "syno.run_id": run_id}
        ) as span:
            return await _ingest(service, path, seen, attempt, run_id, folder, span)
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


async def _ingest(
    service: IngestionService, path: Path, seen: FileState, attempt: int, run_id: str, folder: Path, span: trace.Span
) -> FileOutcome:
    settings = service.settings
    started = time.perf_counter()
    try:
        taken = await asyncio.to_thread(share.take, path, folder, seen, settings.ingestion.max_file_bytes)
    except FileNotFoundError:
        return FileOutcome("gone", "")
    except share.FileChanged:
        return FileOutcome("changed", "")
    except InputRejected as error:  # a link, a pipe or a file over the size limit: never read
        await quarantine(service, path, run_id, error, seen=seen, taken=None)
        stage_input = StageInput(run_id=run_id, snapshot_id="unknown", reference=share.display_name(path.name))
        await publish_failure(service.context, stage_input=stage_input, error=error)
        return FileOutcome("quarantined", "")
    snapshot_id = taken.snapshot_id
    span.set_attribute("syno.snapshot_id", snapshot_id)
    fingerprint_seconds = time.perf_counter() - started

    existing = await manifest.find_snapshot(service.pool, snapshot_id)
    if existing is not None and not (settings.data_dir / existing["stored_path"]).exists():
        # Accepted and committed, then the process died before the file left the share: finish the move.
        target = share.inside(settings.data_dir, settings.data_dir / existing["stored_path"])
        share.move(share.judged_file(path, taken), target)
        # The run the dead process left at 'running' ended with its commit: close it as succeeded.
        await db.close_running(service.pool, snapshot_id=snapshot_id, stage="ingestion", status="succeeded")
        get_logger().info("workbook_move_finished", file_name=share.display_name(path.name), snapshot_id=snapshot_id)
        return FileOutcome("landed", snapshot_id)
    if existing is not None:
        await keep_duplicate(service, path, taken, existing)
        return FileOutcome("duplicate", snapshot_id)

    stage_input = StageInput(
        run_id=run_id,
        snapshot_id=snapshot_id,
        reference=share.display_name(path.name),
        delivery=attempt,
        # `syno smoke`'s workbook: every stage runs it, none publishes or sends anything (bus.REHEARSAL_HEADER)
        replay={bus.REHEARSAL_HEADER: "1"} if path.name.startswith(bus.REHEARSAL_FILE_PREFIX) else {},
    )
    result = await run_stage_input(
        service.context,
        stage_input=stage_input,
        work=lambda: land_workbook(service, path, taken, run_id, fingerprint_seconds),
    )
    if isinstance(result, RetryLater) and isinstance(result.error, share.FileChanged):
        return FileOutcome("changed", snapshot_id)
    if isinstance(result, RetryLater):
        files_counter.add(1, {"outcome": "retry"})
        return FileOutcome("retry", snapshot_id, retry_after=result.delay)
    if isinstance(result, StageOutcome):  # its duration is recorded by the stage protocol, as every stage's
        return FileOutcome("landed", snapshot_id)
    if isinstance(result, StageFailed) and taken.copy.exists():  # not the contract (it quarantines its own)
        gave_up = SynoError(
            f"ingestion failed {attempt} times on this file; see ops.stage_runs for the errors", code="gave_up"
        )
        await quarantine(service, path, run_id, gave_up, seen=seen, taken=taken)
    return FileOutcome("quarantined", snapshot_id)


async def keep_duplicate(service: IngestionService, path: Path, taken: Taken, existing: manifest.SnapshotRow) -> None:
    """A repeat of an accepted snapshot: information, not a failure. Kept aside, recorded, never processed again."""
    settings = service.settings
    file_name = share.display_name(path.name)
    kept = share.keep_duplicate(settings.data_dir, share.judged_file(path, taken), taken.snapshot_id, file_name)
    message = (
        f"'{file_name}' has the same content as '{existing['file_name']}' accepted at "
        f"{existing['accepted_at']:%Y-%m-%d %H:%M} UTC; not processed again (use `syno replay` to force)"
    )
    await manifest.record_file(
        service.pool,
        file_name=file_name,
        outcome="duplicate",
        snapshot_id=taken.snapshot_id,
        size_bytes=taken.state.size,
        reason_code="duplicate_snapshot",
        message=message,
        stored_path=str(kept.relative_to(settings.data_dir)),
    )
    files_counter.add(1, {"outcome": "duplicate"})
    get_logger().info("workbook_duplicate", file_name=file_name, snapshot_id=taken.snapshot_id, message=message)


async def quarantine(
    service: IngestionService, path: Path, run_id: str, error: SynoError, *, seen: FileState, taken: Taken | None
) -> None:
    """Keep what was judged in quarantine/ with its reason: the copy that was read, or the entry itself when
    it was never read (a file over the size limit is moved as it is; a link or pipe leaves only the reason)."""
    data_dir = service.settings.data_dir
    file_name = share.display_name(path.name)
    snapshot_id = taken.snapshot_id if taken is not None else None
    details = {"snapshot_id": snapshot_id, "size_bytes": seen.size, "run_id": run_id}
    if taken is not None:
        judged = share.judged_file(path, taken)
        kept = share.quarantine(
            data_dir, judged, file_name=file_name, code=error.code, message=error.message, details=details
        )
    elif seen.kind == "file":
        kept = share.quarantine(data_dir, path, code=error.code, message=error.message, details=details)
    else:
        kept = share.refuse_entry(data_dir, path, code=error.code, message=error.message, details=details)
    await manifest.record_file(
        service.pool,
        file_name=file_name,
        outcome="quarantined",
        snapshot_id=snapshot_id,
        size_bytes=seen.size,
        reason_code=error.code,
        message=error.message,
        stored_path=str(kept.relative_to(data_dir.resolve())),
    )
    files_counter.add(1, {"outcome": "quarantined"})
    get_logger().warning("workbook_quarantined", file_name=file_name, code=error.code, error=error.message)


async def land_workbook(
    service: IngestionService, path: Path, taken: Taken, run_id: str, fingerprint_seconds: float
) -> StageOutcome:
    """The stage's work: sheets to parquet, manifest and completion in one transaction, the file kept aside."""
    settings, pool = service.settings, service.pool
    limits, snapshot_id, file_name = settings.ingestion, taken.snapshot_id, share.display_name(path.name)
    crashes_before = await manifest.reader_crashes(pool, snapshot_id, reader.CRASH_CODES)
    split_started = time.perf_counter()
    try:
        with tracer.start_as_current_span("ingestion.split_sheets"):
            read = await reader.read_workbook(taken.copy, taken.copy.parent, limits, crashes_before=crashes_before)
    except InputRejected as error:
        share.ensure_unchanged(path, taken)  # a verdict on bytes no longer on the share is void: FileChanged
        await quarantine(service, path, run_id, error, seen=taken.state, taken=taken)
        raise
    split_seconds = time.perf_counter() - split_started
    faults.at("ingestion.after_split")
    reader_peak_bytes.record(read.end.peak_rss_bytes, {"format": read.workbook_format})
    share.ensure_unchanged(path, taken)

    out_dir = share.inside(settings.data_dir, settings.processed_dir / "ingestion" / snapshot_id)
    sheets = await asyncio.to_thread(keep_sheets, read.sheets, out_dir)
    landed_sheets = [landed_sheet(sheet, settings.data_dir) for sheet in sheets]
    sheet_summary = {
        sheet.name: {"rows": sheet.rows, "columns": sheet.columns, "parquet_path": sheet.parquet_path}
        for sheet in landed_sheets
    }
    previous = await manifest.previous_snapshot(pool)
    delta = snapshot_delta({"size_bytes": taken.state.size, "sheets": sheet_summary}, previous)
    stored_path = share.accepted_path(settings.data_dir, file_name, snapshot_id)
    event = WorkbookLanded(
        run_id=run_id,
        snapshot_id=snapshot_id,
        file_name=file_name,
        path=str(stored_path.relative_to(settings.data_dir.resolve())),
        size_bytes=taken.state.size,
        delta=delta,
        sheets=landed_sheets,
        contract_version=CONTRACT_VERSION,
        mapping_versions=mapping_versions(settings.mapping_table_dir),
    )
    timings = {"fingerprint": fingerprint_seconds, "split": split_seconds}
    reading = {"format": read.workbook_format, "peak_rss_bytes": read.end.peak_rss_bytes}
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
            file_name=file_name,
            outcome="accepted",
            snapshot_id=snapshot_id,
            size_bytes=taken.state.size,
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
    share.move(share.judged_file(path, taken), stored_path)
    files_counter.add(1, {"outcome": "accepted"})
    for sheet in landed_sheets:
        rows_counter.add(sheet.rows, {"sheet": sheet.name})
    get_logger().info("workbook_landed", file_name=file_name, sheets={s.name: s.rows for s in landed_sheets})
    return StageOutcome(
        subject=bus.WORKBOOK_LANDED,
        event=event,
        rows=sum(sheet.rows for sheet in landed_sheets),
        details={"timings": timings, "reader": reading},
    )


def keep_sheets(sheets: list[SheetParquet], out_dir: Path) -> list[SheetParquet]:
    """Move the parquet files the reader wrote in the work folder to the snapshot's folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    kept = []
    for sheet in sheets:
        target = out_dir / sheet.parquet_path.name
        shutil.move(sheet.parquet_path, target)
        kept.append(dataclasses.replace(sheet, parquet_path=target))
    return kept


def landed_sheet(sheet: SheetParquet, data_dir: Path) -> SheetLanded:
    return SheetLanded(
        name=sheet.sheet.name,
        kind=sheet.sheet.kind,
        year=sheet.sheet.year,
        rows=sheet.rows,
        columns=sheet.columns,
        parquet_path=str(sheet.parquet_path.relative_to(data_dir.resolve())),
    )
