"""A pipeline of separate service processes on servers of its own, with the means to hurt it.

Each case gets its own NATS server and database, starts the four services as processes (as in
production), can SIGKILL one at a named point (SYNO_FAULT, see syno_shared.faults), restart it,
restart NATS or PostgreSQL, and reads back what happened: the events in the stream, the stage
runs, the tables, and the notifications a local webhook received.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import nats

from syno_cli.pipeline import drop_on_share, ensure_stream
from syno_shared.embedded import EmbeddedNats

SERVICES = ("ingestion", "transform", "forecast", "activation")


class Webhook:
    """A local JSON endpoint standing in for Slack/Teams: counts what each notification says."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_address[1]}/hook"

    def titles(self) -> Counter[str]:
        return Counter(str(body.get("title", "")) for body in self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Pipeline:
    root: Path
    pg_dsn: str
    mapping_dir: Path
    nats_server: EmbeddedNats = field(init=False)
    webhook: Webhook = field(init=False)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        (self.root / "nats").mkdir(parents=True)
        for folder in ("raw", "processed", "quarantine"):
            (self.data_dir / folder).mkdir(parents=True)
        self.nats_server = EmbeddedNats(self.root / "nats")
        self.nats_server.start()
        asyncio.run(ensure_stream(self.nats_url, "SYNO"))
        self.webhook = Webhook()

    @property
    def nats_url(self) -> str:
        return self.nats_server.url

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def environment(self, fault: str | None) -> dict[str, str]:
        env = {
            **os.environ,
            "SYNO_NATS_URL": self.nats_url,
            "SYNO_PG_DSN": self.pg_dsn,
            "SYNO_DATA_DIR": str(self.data_dir),
            "SYNO_MAPPING_DIR": str(self.mapping_dir),
            "SYNO_INGESTION__POLL_SECONDS": "0.2",
            "SYNO_ACTIVATION__NOTIFY_URLS": json.dumps([self.webhook.url]),
            "SYNO_LOG_FORMAT": "json",
            "SYNO_HEALTH_DIR": str(self.root),
        }
        env.pop("SYNO_FAULT", None)
        if fault is not None:
            env["SYNO_FAULT"] = fault
        return env

    def start(self, name: str, fault: str | None = None, module: str | None = None) -> None:
        """Start a service process (`name` is also its log's name; `module` runs another replica of one)."""
        log = (self.root / f"{name}.log").open("ab")
        self.logs.append(log)
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module or f"syno_{name}"],
            env=self.environment(fault),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_all(self, faults: dict[str, str] | None = None) -> None:
        for name in SERVICES:
            self.start(name, (faults or {}).get(name))

    def wait_dead(self, name: str, timeout: float = 120) -> int:
        """Wait for the armed service to kill itself; its exit status (-9 for SIGKILL)."""
        return self.processes[name].wait(timeout)

    def kill(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGKILL)
        self.processes[name].wait(30)

    def restart(self, name: str) -> None:
        if self.processes[name].poll() is None:
            self.kill(name)
        self.start(name)

    def drop(self, workbook: Path) -> None:
        drop_on_share(workbook, self.data_dir / "raw")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()
        self.nats_server.stop()
        self.webhook.close()

    # --- what happened

    def events(self, subject: str | None = None) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        return asyncio.run(stored_events(self.nats_url, subject))

    def wait_for(self, subject: str, snapshot_id: str, timeout: float = 180) -> float:
        """Seconds until an event of `subject` for the snapshot is in the stream."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if any(body.get("snapshot_id") == snapshot_id for _, _, body in self.events(subject)):
                return time.monotonic() - started
            time.sleep(0.5)
        raise AssertionError(f"no {subject} for {snapshot_id[:12]} within {timeout:.0f} s; see {self.root}/*.log")

    def wait_for_stage_run(self, stage: str, status: str = "running", timeout: float = 120) -> None:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if any(row == (stage, status) for row in self.stage_runs()):
                return
            time.sleep(0.2)
        raise AssertionError(f"{stage} never reached {status}")

    def stage_runs(self) -> list[tuple[str, str]]:
        async def read() -> list[tuple[str, str]]:
            try:
                connection = await asyncpg.connect(self.pg_dsn)
            except (OSError, asyncpg.PostgresError):
                return []
            try:
                rows = await connection.fetch("select stage, status from ops.stage_runs order by stage_run_id")
            except asyncpg.UndefinedTableError:
                return []
            finally:
                await connection.close()
            return [(row[0], row[1]) for row in rows]

        return asyncio.run(read())


async def stored_events(nats_url: str, subject: str | None) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        info = await js.stream_info("SYNO")
        found = []
        for sequence in range(max(info.state.first_seq, 1), info.state.last_seq + 1):
            try:
                message = await js.get_msg("SYNO", sequence)
            except nats.js.errors.NotFoundError:
                continue
            if subject is None or message.subject == subject:
                found.append((message.subject or "", dict(message.headers or {}), json.loads(message.data or b"{}")))
        return found
    finally:
        await connection.close()
