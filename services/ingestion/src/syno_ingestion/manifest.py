"""ops.ingestion_manifest and ops.ingestion_files: what came in, when, and what became of it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

import asyncpg

from syno_shared import bus
from syno_shared.events import WorkbookLanded


class SnapshotRow(TypedDict):
    snapshot_id: str
    file_name: str
    stored_path: str
    accepted_at: datetime


async def find_snapshot(pool: asyncpg.Pool, snapshot_id: str) -> SnapshotRow | None:
    row = await pool.fetchrow(
        "select snapshot_id, file_name, stored_path, accepted_at from ops.ingestion_manifest where snapshot_id = $1",
        snapshot_id,
    )
    if row is None:
        return None
    return SnapshotRow(
        snapshot_id=row["snapshot_id"],
        file_name=row["file_name"],
        stored_path=row["stored_path"],
        accepted_at=row["accepted_at"],
    )


async def previous_snapshot(pool: asyncpg.Pool) -> dict[str, Any] | None:
    """The latest accepted snapshot, shaped for `validation.snapshot_delta`; never a rehearsal's (`syno smoke`)."""
    row = await pool.fetchrow(
        "select snapshot_id, size_bytes, sheets::text as sheets from ops.ingestion_manifest"
        " where not starts_with(file_name, $1) order by accepted_at desc limit 1",
        bus.REHEARSAL_FILE_PREFIX,
    )
    if row is None:
        return None
    return {"snapshot_id": row["snapshot_id"], "size_bytes": row["size_bytes"], "sheets": json.loads(row["sheets"])}


async def record_file(
    connection: asyncpg.Pool | asyncpg.Connection,
    *,
    file_name: str,
    outcome: str,
    snapshot_id: str | None,
    size_bytes: int | None,
    reason_code: str | None = None,
    message: str | None = None,
    stored_path: str | None = None,
) -> None:
    await connection.execute(
        "insert into ops.ingestion_files"
        " (file_name, snapshot_id, size_bytes, outcome, reason_code, message, stored_path)"
        " values ($1, $2, $3, $4, $5, $6, $7)",
        file_name,
        snapshot_id,
        size_bytes,
        outcome,
        reason_code,
        message,
        stored_path,
    )


async def insert_manifest(
    connection: asyncpg.Connection,
    event: WorkbookLanded,
    *,
    sheets: dict[str, Any],
    cell_errors: dict[str, Any],
    timings: dict[str, float],
) -> None:
    """The accepted snapshot, as the event describes it, with what only ingestion keeps (cell errors, timings)."""
    await connection.execute(
        "insert into ops.ingestion_manifest (snapshot_id, run_id, file_name, stored_path, size_bytes, delta, sheets,"
        " cell_errors, contract_version, mapping_versions, timings)"
        " values ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9, $10::jsonb, $11::jsonb)",
        event.snapshot_id,
        event.run_id,
        event.file_name,
        event.path,
        event.size_bytes,
        event.delta.model_dump_json(),
        json.dumps(sheets),
        json.dumps(cell_errors),
        event.contract_version,
        json.dumps(event.mapping_versions),
        json.dumps(timings),
    )


async def reader_crashes(pool: asyncpg.Pool, snapshot_id: str, codes: Sequence[str]) -> int:
    """How many times reading this snapshot crashed the reader (abort, out of memory, panic, time limit),
    across restarts of the service: the stage trail keeps every failed run with its code."""
    count: int = await pool.fetchval(
        "select count(*) from ops.stage_runs where stage = 'ingestion' and snapshot_id = $1"
        " and error_code = any($2::text[])",
        snapshot_id,
        list(codes),
    )
    return count
