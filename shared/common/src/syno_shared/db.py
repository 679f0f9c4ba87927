"""PostgreSQL access shared by the services: the pool, the ops audit trail, stage completions.

A stage records its completion for (snapshot_id, stage) in the same transaction as its last
writes, so a redelivered or replayed event finds it and does nothing unless forced.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import polars as pl
from opentelemetry import trace

from syno_shared import bus


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 4) -> asyncpg.Pool:
    pool: asyncpg.Pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
    return pool


async def stage_started(pool: asyncpg.Pool, *, run_id: str, snapshot_id: str, stage: str, delivery: int) -> int:
    """Open a run row. Rows of the same snapshot and stage still 'running' belong to a worker that died
    (the input came back to us): they are closed as abandoned, so nothing stays 'running' forever."""
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "update ops.stage_runs set status = 'abandoned', finished_at = now(),"
            " seconds = extract(epoch from now() - started_at),"
            " error_message = 'the worker stopped before finishing; the input was taken again'"
            " where snapshot_id = $1 and stage = $2 and status = 'running'",
            snapshot_id,
            stage,
        )
        context = trace.get_current_span().get_span_context()
        stage_run_id: int = await connection.fetchval(
            "insert into ops.stage_runs (run_id, snapshot_id, stage, status, delivery, trace_id)"
            " values ($1, $2, $3, 'running', $4, $5) returning stage_run_id",
            run_id,
            snapshot_id,
            stage,
            delivery,
            format(context.trace_id, "032x") if context.is_valid else None,
        )
    return stage_run_id


async def close_running(pool: asyncpg.Pool, *, snapshot_id: str, stage: str, status: str = "abandoned") -> int:
    """Close the runs of a snapshot and stage a dead process left at 'running'; returns how many."""
    result: str = await pool.execute(
        "update ops.stage_runs set status = $3, finished_at = now(), seconds = extract(epoch from now() - started_at),"
        " error_message = 'closed after a restart: the worker stopped before recording its end'"
        " where snapshot_id = $1 and stage = $2 and status = 'running'",
        snapshot_id,
        stage,
        status,
    )
    return int(result.split()[-1])


async def stage_finished(
    pool: asyncpg.Pool,
    stage_run_id: int,
    *,
    status: str,
    rows: int | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await pool.execute(
        "update ops.stage_runs set status = $2, finished_at = now(),"
        " seconds = extract(epoch from now() - started_at), rows = $3, error_code = $4,"
        " error_message = $5, details = $6::jsonb where stage_run_id = $1",
        stage_run_id,
        status,
        rows,
        error_code,
        error_message,
        json.dumps(details or {}, default=str),
    )


@dataclass(frozen=True)
class Completion:
    """A stage's recorded result for a snapshot: the event to publish, its message id and headers."""

    snapshot_id: str
    stage: str
    subject: str
    event_json: str
    message_id: str
    headers: dict[str, str]
    is_published: bool


_COMPLETION_COLUMNS = (
    "snapshot_id, stage, output_subject, output_event::text, message_id, headers::text, published_at is not null"
)


def _completion(row: asyncpg.Record) -> Completion:
    return Completion(
        snapshot_id=row[0],
        stage=row[1],
        subject=row[2],
        event_json=row[3],
        message_id=row[4],
        headers=json.loads(row[5]),
        is_published=row[6],
    )


async def completed_output(pool: asyncpg.Pool, *, snapshot_id: str, stage: str) -> Completion | None:
    """What a stage recorded when it completed this snapshot, if it did."""
    row = await pool.fetchrow(
        f"select {_COMPLETION_COLUMNS} from ops.stage_completions where snapshot_id = $1 and stage = $2",
        snapshot_id,
        stage,
    )
    return None if row is None else _completion(row)


async def record_completion(
    connection: asyncpg.Connection,
    *,
    snapshot_id: str,
    stage: str,
    run_id: str,
    subject: str,
    event_json: str,
) -> None:
    """Call inside the transaction holding the stage's last writes: the completion and its outbox entry.

    The message id and headers come from the input being handled (a replay's attempt travels on), as
    the stage protocol set them for this task (`bus.replay_context`).
    """
    replay = bus.current_replay()
    await connection.execute(
        "insert into ops.stage_completions"
        " (snapshot_id, stage, run_id, output_subject, output_event, message_id, headers, published_at)"
        " values ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, null)"
        " on conflict (snapshot_id, stage) do update set run_id = excluded.run_id,"
        " completed_at = now(), output_subject = excluded.output_subject, output_event = excluded.output_event,"
        " message_id = excluded.message_id, headers = excluded.headers, published_at = null",
        snapshot_id,
        stage,
        run_id,
        subject,
        event_json,
        bus.message_id(subject, snapshot_id, replay.get(bus.ATTEMPT_HEADER)),
        json.dumps(replay),
    )


async def mark_published(pool: asyncpg.Pool, *, snapshot_id: str, stage: str, message_id: str) -> None:
    await pool.execute(
        "update ops.stage_completions set published_at = now()"
        " where snapshot_id = $1 and stage = $2 and message_id = $3 and published_at is null",
        snapshot_id,
        stage,
        message_id,
    )


async def unpublished_completions(pool: asyncpg.Pool, *, stage: str, older_than_seconds: float) -> list[Completion]:
    """Completions committed but never published (the process died in between), oldest first."""
    rows = await pool.fetch(
        f"select {_COMPLETION_COLUMNS} from ops.stage_completions"
        " where stage = $1 and published_at is null and completed_at < now() - make_interval(secs => $2)"
        " order by completed_at",
        stage,
        older_than_seconds,
    )
    return [_completion(row) for row in rows]


async def stage_timings(pool: asyncpg.Pool, snapshot_id: str) -> list[dict[str, Any]]:
    """The latest run of each stage for a snapshot: status, seconds, rows, error."""
    rows = await pool.fetch(
        "select distinct on (stage) stage, status, seconds, rows, error_code, error_message, started_at"
        " from ops.stage_runs where snapshot_id = $1 order by stage, started_at desc",
        snapshot_id,
    )
    return [dict(row) for row in rows]


async def fetch_frame(
    connection: asyncpg.Pool | asyncpg.Connection,
    query: str,
    *args: Any,
    schema: Mapping[str, pl.DataType | type[pl.DataType]] | None = None,
) -> pl.DataFrame:
    """The rows of a query as a polars frame; `schema` fixes names and dtypes (and the columns of an empty result)."""
    rows = await connection.fetch(query, *args)
    if schema is not None:
        return pl.DataFrame([tuple(row.values()) for row in rows], schema=dict(schema), orient="row")
    if not rows:
        return pl.DataFrame()
    return pl.DataFrame([dict(row) for row in rows])


async def copy_frame(connection: asyncpg.Connection, schema: str, table: str, frame: pl.DataFrame) -> None:
    """COPY a polars frame into a table as CSV: one round trip, no Python row loop."""
    buffer = io.BytesIO()
    frame.write_csv(buffer, null_value=r"\N", include_header=False)
    buffer.seek(0)
    await connection.copy_to_table(
        table, schema_name=schema, source=buffer, columns=frame.columns, format="csv", null=r"\N"
    )
