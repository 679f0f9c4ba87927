"""Fixtures for the activation tests: local servers on 127.0.0.1 (see activation_fakes), and a database of
each test's own holding marts built by the project's dbt and two forecast runs (see activation_marts)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import pytest
from activation_fakes import LocalHTTPServer, LocalSMTPServer, Responder, TLSFiles
from activation_marts import build_marts_database, database_dsn, execute

from syno_shared import db
from syno_shared.embedded import Endpoints


@pytest.fixture
def http_server() -> Iterator[Callable[..., LocalHTTPServer]]:
    """Factory: `http_server(responder, tls=None)` starts a recorder, stopped after the test."""
    started: list[LocalHTTPServer] = []

    def start(responder: Responder, *, tls: ssl.SSLContext | None = None) -> LocalHTTPServer:
        server = LocalHTTPServer(responder, tls=tls).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A self-signed certificate for 127.0.0.1 (made with the openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl CLI is needed to make a local TLS certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return TLSFiles(cert, key)


@pytest.fixture
def smtp_server() -> Iterator[LocalSMTPServer]:
    server = LocalSMTPServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def marts_template(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Built once per session: migrations, raw lines, `dbt build`, forecasts (see activation_marts.py)."""
    return build_marts_database(endpoints.pg_dsn, tmp_path_factory.mktemp("dbt-target"))


@pytest.fixture
def marts_dsn(endpoints: Endpoints, marts_template: str) -> str:
    """A database of this test's own, cloned from the template (marts, forecasts, migrations and all)."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    asyncio.run(execute(endpoints.pg_dsn, f"create database {name} template {marts_template}"))
    return database_dsn(endpoints.pg_dsn, name)


@pytest.fixture
async def pool(marts_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's own copy of the dbt-built snapshot."""
    connection_pool = await db.create_pool(marts_dsn)
    try:
        yield connection_pool
    finally:
        await connection_pool.close()
