"""`syno check` against real servers: all green on a provisioned deployment, one failing line naming the setting
for each thing broken, and nothing written anywhere (rows, stream messages, files, outside targets)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import nats
import pytest

from syno_shared import access, bus, migrate
from syno_shared.embedded import EmbeddedNats, Endpoints
from syno_shared.fingerprint import mapping_versions

pytestmark = pytest.mark.integration
SERVICE = "transform"
DBT_DIR = Path(__file__).resolve().parents[2] / "dbt"


@dataclass
class Listener:
    """A TCP port that accepts connections and counts the bytes it is sent (an outside target stand-in)."""

    port: int
    received: list[bytes]
    accepted: list[int]


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    found = Listener(server.getsockname()[1], [], [])
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            found.accepted.append(1)
            with connection:
                connection.settimeout(0.5)
                try:
                    while data := connection.recv(1024):
                        found.received.append(data)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield found
    stop.set()
    thread.join(timeout=5)
    server.close()


@dataclass
class Deployment:
    env: dict[str, str]
    nats: EmbeddedNats
    owner_dsn: str
    data_dir: Path


async def provision_bus(operator_url: str) -> None:
    """The streams (as the deployment's setup makes them) and the event stream's durable consumers (as the services
    create them when they start)."""
    await bus.ensure_streams(operator_url, "SYNO")
    connection = await nats.connect(operator_url)
    try:
        js = connection.jetstream()
        for service in access.SERVICES:
            for consumer in access.service_bus(service).consumes:
                if consumer.is_event_stream:
                    await js.add_consumer(consumer.stream, bus.consumer_config(consumer.durable, 5))
    finally:
        await connection.close()


@pytest.fixture
def deployment(
    endpoints: Endpoints, isolated_pg_dsn: str, data_dir: Path, tmp_path: Path, listener: Listener
) -> Iterator[Deployment]:
    """A provisioned deployment: its own NATS (users and streams), a migrated database, the share's folders, a
    Metabase and a notification target (the listener); the environment the transform service runs with."""
    (tmp_path / "nats").mkdir()
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    asyncio.run(provision_bus(server.url))
    migrate.apply_migrations(isolated_pg_dsn, migrate.installed_sources())
    credentials = endpoints.credentials[SERVICE]
    assert credentials.pg_role is not None and credentials.pg_password is not None
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNO_")}
    env.update(
        SYNO_NATS_URL=server.address,
        SYNO_NATS_USER=SERVICE,
        SYNO_NATS_PASSWORD=server.passwords[SERVICE],
        SYNO_PG_DSN=access.with_credentials(
            isolated_pg_dsn, credentials.pg_role, credentials.pg_password.get_secret_value()
        ),
        SYNO_DATA_DIR=str(data_dir),
        SYNO_ACTIVATION__METABASE__MODE="card_refresh",
        SYNO_ACTIVATION__METABASE__URL=f"http://127.0.0.1:{listener.port}",
        SYNO_ACTIVATION__NOTIFY_URLS=json.dumps([f"json://127.0.0.1:{listener.port}/hook-s3cr3t"]),
    )
    yield Deployment(env, server, isolated_pg_dsn, data_dir)
    server.stop()


def syno_check(deployment: Deployment, *args: str, **env: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "syno_cli", "check", "--json", *args],
        env={**deployment.env, **env},
        cwd=deployment.data_dir.parent,  # no .env of the checkout is read
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return done.returncode, json.loads(done.stdout), done.stderr


def failures(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [(check["check"], check["setting"]) for check in report["checks"] if check["status"] == "FAIL"]


def everything(deployment: Deployment) -> dict[str, Any]:
    """Row counts of every ops table, the messages of every stream, every file under the data folder."""

    async def counts() -> dict[str, Any]:
        connection = await asyncpg.connect(deployment.owner_dsn)
        try:
            tables = await connection.fetch("select tablename from pg_tables where schemaname = 'ops'")
            rows = {row["tablename"]: await connection.fetchval(f"select count(*) from ops.{row['tablename']}")
                    for row in tables}  # fmt: skip
        finally:
            await connection.close()
        bus_connection = await nats.connect(deployment.nats.url)
        try:
            js = bus_connection.jetstream()
            streams = {info.config.name: info.state.messages for info in await js.streams_info()}
            consumers = {
                consumer.name: (consumer.num_pending, consumer.delivered.stream_seq)
                for consumer in await js.consumers_info("SYNO")
            }
        finally:
            await bus_connection.close()
        return {"rows": rows, "streams": streams, "consumers": consumers}

    files = sorted(str(path.relative_to(deployment.data_dir)) for path in deployment.data_dir.rglob("*"))
    dbt_files = sorted(str(path.relative_to(DBT_DIR)) for path in DBT_DIR.rglob("*"))  # no target/, logs/, .user.yml
    return {**asyncio.run(counts()), "files": files, "dbt_files": dbt_files}


def test_a_provisioned_deployment_is_all_green_and_nothing_is_written(
    deployment: Deployment, listener: Listener
) -> None:
    before = everything(deployment)

    code, report, stderr = syno_check(deployment)

    assert code == 0, [c for c in report["checks"] if c["status"] == "FAIL"]
    assert report["ok"] is True and failures(report) == []
    by_check: dict[str, list[str]] = {}
    for check in report["checks"]:
        by_check.setdefault(check["check"], []).append(check["detail"])
    assert by_check["nats"] == [f"connected to {deployment.nats.address} as {SERVICE}"]
    assert by_check["streams"] == ["stream SYNO: 0 messages", "stream SYNO_DLQ: 0 messages",
                                   "stream SYNO_ADVISORIES: 0 messages"]  # fmt: skip
    assert by_check["consumers"] == ["transform: syno-transform on SYNO: 0 pending, 0 unacknowledged, 0 redelivered"]
    assert by_check["postgres"][0].startswith("connected to ") and "as syno_transform" in by_check["postgres"][0]
    assert by_check["dbt"] == [f"dbt debug in {DBT_DIR}", f"dbt parse in {DBT_DIR}"]
    versions = mapping_versions(deployment.data_dir / "mapping_table")
    assert by_check["mapping"] == [f"{name} sha256 {digest[:16]}" for name, digest in versions.items()]
    assert by_check["targets"] == [
        f"Metabase http://127.0.0.1:{listener.port}: reachable",
        f"notify_urls[0] json://127.0.0.1:{listener.port}: reachable",
    ]
    # Nothing written: no row, no stream message, no consumer moved, no file; the targets were sent nothing.
    assert everything(deployment) == before
    assert len(listener.accepted) == 2 and listener.received == []
    assert "s3cr3t" not in json.dumps(report) + stderr
    assert deployment.env["SYNO_NATS_PASSWORD"] not in json.dumps(report) + stderr


def test_a_wrong_nats_password_is_one_failing_line_naming_it(deployment: Deployment) -> None:
    code, report, _ = syno_check(deployment, "--skip", "dbt", SYNO_NATS_PASSWORD="not-the-password-7f3a")

    assert code == 1
    assert failures(report) == [("nats", "SYNO_NATS_USER / SYNO_NATS_PASSWORD")]
    assert "7f3a" not in json.dumps(report)


def test_a_wrong_postgres_password_is_one_failing_line_naming_it(deployment: Deployment) -> None:
    dsn = access.with_credentials(deployment.env["SYNO_PG_DSN"], access.pg_role(SERVICE), "wrong")
    code, report, _ = syno_check(deployment, SYNO_PG_DSN=dsn)

    assert code == 1
    assert failures(report) == [("postgres", "SYNO_PG_DSN (its user and password)")]
    assert [check["status"] for check in report["checks"] if check["check"] == "dbt"] == ["skip"]


def test_a_missing_stream_is_one_failing_line_and_its_consumers_are_skipped(deployment: Deployment) -> None:
    async def delete_stream() -> None:
        connection = await nats.connect(deployment.nats.url)
        try:
            await connection.jetstream().delete_stream("SYNO")
        finally:
            await connection.close()

    asyncio.run(delete_stream())
    code, report, _ = syno_check(deployment, "--skip", "dbt")

    assert code == 1
    assert failures(report) == [
        ("streams", "SYNO_STREAM_NAME, or run the deployment's setup (python -m syno_shared.provision) as the operator")
    ]
    assert [(c["status"], c["detail"]) for c in report["checks"] if c["check"] == "consumers"] == [
        ("skip", "transform: syno-transform on SYNO (its stream is missing)")
    ]


def test_a_missing_mapping_folder_is_one_failing_line_naming_it(deployment: Deployment, tmp_path: Path) -> None:
    code, report, _ = syno_check(deployment, "--skip", "dbt", SYNO_MAPPING_DIR=str(tmp_path / "nowhere"))

    assert code == 1
    assert failures(report) == [("mapping", "SYNO_MAPPING_DIR (or SYNO_DATA_DIR)")]
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SYNO_MAX_DELIVER", "0"), ("SYNO_ACTIVATION__METABASE__MODE", "sometimes")],
)
def test_an_invalid_setting_is_one_failing_line_naming_it(deployment: Deployment, variable: str, value: str) -> None:
    code, report, _ = syno_check(deployment, "--skip", "dbt", **{variable: value})

    assert code == 1
    assert failures(report) == [("settings", variable)]
