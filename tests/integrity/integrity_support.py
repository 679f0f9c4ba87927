"""What the warehouse-integrity tests share: generated workbooks as landed events, the transform service running
in this process on a bus of its own, the events it publishes, and hashes of whole mart tables.

A table's hash is md5 over its rows as text, sorted: two tables hash alike exactly when they hold the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import nats
import polars as pl
from nats.aio.msg import Msg

from syno_ingestion.workbook import split_sheets
from syno_sample.workbook import SampleReport, SampleSpec, write_workbook
from syno_shared import bus
from syno_shared.events import SheetLanded, SnapshotDelta, WorkbookLanded
from syno_shared.fingerprint import file_sha256
from syno_transform.main import REPO_DBT_DIR
from syno_transform.settings import TransformSettings

TransformApp = Callable[..., contextlib.AbstractAsyncContextManager[TransformSettings]]
"""The `transform_app` fixture: `async with transform_app(**transform_options) as settings:` runs a replica."""

STABLE_MARTS = (
    "c2_adoption_scorecard",
    "commercial_activation_snapshot",
    "sellout_quarterly",
    "svr_rm_customer_quarterly",
    "svr_rm_quarterly",
)
"""The five marts BI reads by their stable names, marts.<mart>, in the order a publication locks them."""


def dbt_project_with_test(folder: Path, name: str, sql: str) -> Path:
    """A copy of the project's dbt folder with one more singular test (tests/<name>.sql)."""
    project = folder / "dbt-project"
    shutil.copytree(REPO_DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (project / "tests" / f"{name}.sql").write_text(sql)
    return project


def write_sample(
    folder: Path,
    mapping_dir: Path,
    *,
    seed: int,
    end_date: date,
    years: tuple[int, ...] = (2023, 2024),
    rows_per_year: int = 2500,
) -> tuple[Path, SampleReport]:
    workbook = folder / f"sellout-{seed}-{end_date:%Y%m%d}-{rows_per_year}.xlsx"
    spec = SampleSpec(years=years, rows_per_year=rows_per_year, seed=seed, end_date=end_date, unmapped_share=0.0)
    return workbook, write_workbook(workbook, spec, mapping_dir)


def landed_event(workbook: Path, data_dir: Path, *, landed_at: datetime) -> WorkbookLanded:
    """workbook.landed as ingestion would publish it (its sheets as parquet under data_dir), landed at `landed_at`."""
    snapshot_id = file_sha256(workbook)
    sheets = split_sheets(workbook, data_dir / "processed" / "ingestion" / snapshot_id)
    return WorkbookLanded(
        run_id=uuid.uuid4().hex,
        snapshot_id=snapshot_id,
        produced_at=landed_at,
        file_name=workbook.name,
        path=f"processed/ingestion/{workbook.name}",
        size_bytes=workbook.stat().st_size,
        delta=SnapshotDelta(is_first=True),
        sheets=[
            SheetLanded(
                name=s.sheet.name,
                kind=s.sheet.kind,
                year=s.sheet.year,
                rows=s.rows,
                columns=s.columns,
                parquet_path=str(s.parquet_path.relative_to(data_dir)),
            )
            for s in sheets
        ],
        contract_version="1.0",
        mapping_versions={},
    )


def quarterly_revenue(truth: pl.DataFrame) -> dict[date, float]:
    """USD revenue per quarter of the generator's true lines: what marts.sellout_quarterly must add up to."""
    totals = (
        truth.filter(pl.col("invoice_date").is_not_null())
        .group_by(quarter=pl.col("invoice_date").dt.truncate("1q"))
        .agg(pl.col("revenue_usd").sum())
    )
    return {quarter: round(revenue, 2) for quarter, revenue in totals.iter_rows()}


# --- the database ----------------------------------------------------------------------------------------------


def table_hash_sql(schema: str, mart: str) -> str:
    return f"select md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from \"{schema}\".\"{mart}\" as t"


async def table_hashes(connection: asyncpg.Connection, schema: str) -> dict[str, str]:
    """Each mart of `schema` -> the hash of its whole table."""
    return {mart: await connection.fetchval(table_hash_sql(schema, mart)) for mart in STABLE_MARTS}


async def stable_hashes_at_once(connection: asyncpg.Connection) -> tuple[str, ...]:
    """The hashes of the five stable names read by one statement: what one dashboard query sees at one moment."""
    columns = ", ".join(f"({table_hash_sql('marts', mart)})" for mart in STABLE_MARTS)
    row = await connection.fetchrow(f"select {columns}")
    return tuple(row.values())


async def fetch_rows(dsn: str, query: str, *args: Any) -> list[dict[str, Any]]:
    connection = await asyncpg.connect(dsn)
    try:
        return [dict(row) for row in await connection.fetch(query, *args)]
    finally:
        await connection.close()


async def sellout_by_quarter(dsn: str, schema: str = "marts") -> dict[date, float]:
    rows = await fetch_rows(
        dsn,
        f'select quarter, round(sum(revenue_usd)::numeric, 2)::float8 as revenue from "{schema}".sellout_quarterly'
        " group by quarter",
    )
    return {row["quarter"]: row["revenue"] for row in rows}


async def stable_hashes(dsn: str) -> dict[str, str]:
    connection = await asyncpg.connect(dsn)
    try:
        return await table_hashes(connection, "marts")
    finally:
        await connection.close()


async def build_hashes(dsn: str, marts_schema: str) -> dict[str, str]:
    connection = await asyncpg.connect(dsn)
    try:
        return await table_hashes(connection, marts_schema)
    finally:
        await connection.close()


async def schemas_like(dsn: str, pattern: str) -> list[str]:
    rows = await fetch_rows(dsn, "select nspname from pg_namespace where nspname like $1 order by 1", pattern)
    return [row["nspname"] for row in rows]


# --- the bus ---------------------------------------------------------------------------------------------------


@dataclass
class EventLog:
    """Every event published on the bus while it listens: (subject, headers, body) in arrival order."""

    nats_url: str
    events: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _connection: Any = None

    async def start(self) -> None:
        self._connection = await nats.connect(self.nats_url)

        async def receive(message: Msg) -> None:
            self.events.append((message.subject, dict(message.headers or {}), json.loads(message.data)))

        for subject in bus.ALL_SUBJECTS:
            await self._connection.subscribe(subject, cb=receive)
        await self._connection.flush()

    async def stop(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def of(self, subject: str, snapshot_id: str | None = None) -> list[dict[str, Any]]:
        return [
            body
            for got, _, body in self.events
            if got == subject and (snapshot_id is None or body.get("snapshot_id") == snapshot_id)
        ]

    async def wait_for(self, condition: Callable[[], bool], seconds: float = 300) -> None:
        for _ in range(int(seconds * 10)):
            if condition():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"not seen within {seconds:.0f} s; events: {[(s, b.get('snapshot_id')) for s, _, b in self.events]}"
        )

    async def outcome(self, snapshot_id: str, *, count: int = 1, seconds: float = 300) -> dict[str, Any]:
        """The `count`-th marts.ready or pipeline.failed of the snapshot (as {'subject': ..., **body})."""

        def answers() -> list[tuple[str, dict[str, Any]]]:
            return [
                (subject, body)
                for subject, _, body in self.events
                if subject in (bus.MARTS_READY, bus.PIPELINE_FAILED) and body.get("snapshot_id") == snapshot_id
            ]

        await self.wait_for(lambda: len(answers()) >= count, seconds)
        subject, body = answers()[count - 1]
        return {"subject": subject, **body}


@contextlib.asynccontextmanager
async def listening(nats_url: str) -> AsyncIterator[EventLog]:
    log = EventLog(nats_url)
    await log.start()
    try:
        yield log
    finally:
        await log.stop()


async def land(nats_url: str, event: WorkbookLanded, stream_name: str = "SYNO") -> None:
    """Publish workbook.landed as ingestion does (its deterministic message id)."""
    connection = await nats.connect(nats_url)
    try:
        await connection.jetstream().publish(
            bus.WORKBOOK_LANDED,
            event.model_dump_json().encode(),
            stream=stream_name,
            headers={"Nats-Msg-Id": bus.message_id(bus.WORKBOOK_LANDED, event.snapshot_id)},
        )
    finally:
        await connection.close()


async def last_sequence(nats_url: str, subject: str, stream_name: str = "SYNO") -> int:
    """The stream sequence of the latest message stored on `subject`."""
    connection = await nats.connect(nats_url)
    try:
        return int((await connection.jetstream().get_last_msg(stream_name, subject)).seq)
    finally:
        await connection.close()


async def wait_until_handled(nats_url: str, sequence: int, durable: str, stream_name: str = "SYNO") -> None:
    """Wait until the consumer `durable` has acknowledged the message at `sequence` (and everything before it)."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        for _ in range(1200):
            info = await js.consumer_info(stream_name, durable)
            if info.ack_floor.stream_seq >= sequence and not info.num_ack_pending:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{durable} did not handle stream message {sequence} within 120 s")
    finally:
        await connection.close()
