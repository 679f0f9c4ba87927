"""The share watcher running in the test's event loop, on the real embedded NATS and PostgreSQL.

It is the service's own loop (`watch_share`) with the service's own edges; only the process is the
test's, so the test can read the heartbeat and the peak memory of every reader process it spawned
(they are the test process's children). Files are placed on the share as a person or an attacker
would place them, and each one's fate is read back from the share, quarantine/ and ops tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import polars as pl

from syno_ingestion.handlers import watch_share
from syno_ingestion.settings import IngestionOptions, IngestionSettings
from syno_ingestion.share import display_name
from syno_shared import db, migrate
from syno_shared.bus import create_broker, ensure_streams
from syno_shared.service import Service
from syno_shared.telemetry import setup_telemetry

from .corpus import Hostile


@dataclass(frozen=True)
class Outcome:
    """What became of one file on the share."""

    outcome: str
    reason_code: str | None
    message: str | None
    reason_file: dict[str, Any] | None
    sheets: dict[str, pl.DataFrame]
    seconds: float
    max_heartbeat_age: float


@dataclass
class Watcher:
    root: Path
    nats_url: str
    pg_dsn: str
    heartbeat: list[float] = field(default_factory=lambda: [time.time()])
    task: asyncio.Task[None] | None = None
    service: Service[IngestionSettings] | None = None
    writers: list[threading.Thread] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def outside(self) -> Path:
        """A folder beside the data folder: links point here, and nothing may change here."""
        return self.root / "outside"

    async def start(self) -> None:
        settings = IngestionSettings(
            data_dir=self.data_dir,
            nats_url=self.nats_url,
            pg_dsn=self.pg_dsn,
            ingestion=IngestionOptions(poll_seconds=0.1, stable_polls=2),
        )
        await ensure_streams(self.nats_url, settings.stream_name)
        await asyncio.to_thread(migrate.apply_migrations, self.pg_dsn, migrate.installed_sources(("ops", "ingestion")))
        broker = create_broker(self.nats_url)
        await broker.connect()
        self.service = Service(
            name="ingestion", settings=settings, broker=broker, telemetry=setup_telemetry("ingestion-hostile", None)
        )
        self.service.pool_holder.append(await db.create_pool(self.pg_dsn))
        self.task = asyncio.create_task(watch_share(self.service, self.heartbeat))

    async def stop(self) -> None:
        for writer in self.writers:
            writer.join(30)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        if self.service is not None:
            await self.service.pool.close()
            await self.service.broker.stop()

    @property
    def is_watching(self) -> bool:
        return self.task is not None and not self.task.done()

    def place(self, hostile: Hostile, staging: Path) -> Path:
        """Put the hostile file on the share the way its entry says; returns the share entry."""
        entry = self.raw_dir / hostile.name
        if hostile.placement == "fifo":
            os.mkfifo(entry)
            return entry
        built = staging / f"{hostile.key}.bin"
        hostile.build(built)
        if hostile.placement == "symlink":
            target = self.outside / f"{hostile.key}.xlsx"
            shutil.move(built, target)
            entry.symlink_to(target)
        elif hostile.placement == "growing":
            self._write_slowly(built.read_bytes(), entry)
        else:
            partial = self.raw_dir / f".{hostile.key}.part"  # a person's copy: a hidden name, then a rename
            shutil.move(built, partial)
            partial.rename(entry)
        return entry

    def _write_slowly(self, payload: bytes, entry: Path, chunks: int = 60, pause: float = 0.05) -> None:
        """Grow the file for chunks x pause seconds, far past the stability window (2 polls of 0.1 s)."""
        step = -(-len(payload) // chunks)

        def write() -> None:
            with entry.open("wb") as handle:
                for start in range(0, len(payload), step):
                    handle.write(payload[start : start + step])
                    handle.flush()
                    time.sleep(pause)

        writer = threading.Thread(target=write, name="growing-file")
        writer.start()
        self.writers.append(writer)

    async def outcome(self, entry: Path, deadline_seconds: float = 60.0) -> Outcome:
        """Wait until the entry has left the share and its outcome is recorded; the heartbeat is watched meanwhile."""
        started = time.monotonic()
        oldest = 0.0
        file_name = display_name(entry.name)
        row = None
        while time.monotonic() - started < deadline_seconds:
            oldest = max(oldest, time.time() - self.heartbeat[0])
            if not os.path.lexists(entry):
                row = await self._last_record(file_name)
                if row is not None:
                    break
            await asyncio.sleep(0.1)
        seconds = time.monotonic() - started
        if row is None:
            raise AssertionError(
                f"{file_name!r}: no outcome within {deadline_seconds} s; watcher alive: {self.is_watching}"
            )
        return Outcome(
            outcome=row["outcome"],
            reason_code=row["reason_code"],
            message=row["message"],
            reason_file=self._reason_file(row["stored_path"]) if row["outcome"] == "quarantined" else None,
            sheets=await self._sheets(row["snapshot_id"]) if row["outcome"] == "accepted" else {},
            seconds=seconds,
            max_heartbeat_age=oldest,
        )

    async def _last_record(self, file_name: str) -> asyncpg.Record | None:
        assert self.service is not None
        return await self.service.pool.fetchrow(
            "select outcome, reason_code, message, stored_path, snapshot_id from ops.ingestion_files"
            " where file_name = $1 order by file_event_id desc limit 1",
            file_name,
        )

    def _reason_file(self, stored_path: str) -> dict[str, Any]:
        kept = self.data_dir / stored_path
        reason = kept if kept.name.endswith(".reason.json") else kept.with_name(kept.name + ".reason.json")
        loaded: dict[str, Any] = json.loads(reason.read_text())
        return loaded

    async def _sheets(self, snapshot_id: str) -> dict[str, pl.DataFrame]:
        assert self.service is not None
        sheets = json.loads(
            await self.service.pool.fetchval(
                "select sheets::text from ops.ingestion_manifest where snapshot_id = $1", snapshot_id
            )
        )
        return {name: pl.read_parquet(self.data_dir / sheet["parquet_path"]) for name, sheet in sheets.items()}


def peak_child_rss_bytes() -> int:
    """The largest resident set of any process this test process has spawned and reaped (the readers)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def listing(root: Path, skip: tuple[Path, ...]) -> dict[str, tuple[int, int]]:
    """Every file under root (not under `skip`) with its size and mtime: what 'nothing changed here' compares."""
    found = {}
    for directory, folders, files in os.walk(root):
        folders[:] = [f for f in folders if Path(directory, f) not in skip]
        for name in files:
            status = Path(directory, name).lstat()
            found[str(Path(directory, name).relative_to(root))] = (status.st_size, status.st_mtime_ns)
    return found
