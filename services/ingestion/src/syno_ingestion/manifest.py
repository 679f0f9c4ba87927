"""ops.ingestion_manifest and ops.ingestion_files: what came in, when, and what became of it."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def find_snapshot(pool: asyncpg.Pool, snapshot_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "select snapshot_id, file_name, accepted_at from ops.ingestion_manifest where snapshot_id = $1", snapshot_id
    )
    return None if row is None else dict(row)


async def previous_snapshot(pool: asyncpg.Pool) -> dict[str, Any] | None:
    """The latest accepted snapshot, shaped for `validation.snapshot_delta`."""
    row = await pool.fetchrow(
        "select snapshot_id, size_bytes, sheets::text as sheets from ops.ingestion_manifest"
        " order by accepted_at desc limit 1"
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


async def insert_manifest(connection: asyncpg.Connection, row: dict[str, Any]) -> None:
    await connection.execute(
        "insert into ops.ingestion_manifest (snapshot_id, run_id, file_name, stored_path, size_bytes, delta, sheets,"
        " cell_errors,"
        " contract_version, mapping_versions, timings)"
        " values ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9, $10::jsonb, $11::jsonb)",
        row["snapshot_id"],
        row["run_id"],
        row["file_name"],
        row["stored_path"],
        row["size_bytes"],
        json.dumps(row["delta"]),
        json.dumps(row["sheets"]),
        json.dumps(row["cell_errors"]),
        row["contract_version"],
        json.dumps(row["mapping_versions"]),
        json.dumps(row["timings"]),
    )
