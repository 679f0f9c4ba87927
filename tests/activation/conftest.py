"""Fixtures for the activation tests: local servers on 127.0.0.1 (see activation_fakes), and a database
holding the sample marts and forecasts (see activation_samples)."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import pytest
from activation_fakes import LocalHTTPServer, LocalSMTPServer, Responder, TLSFiles
from activation_samples import Q2, Q3, Q4, c2_scorecard, snapshot

from syno_shared import db, migrate


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


MARTS_DDL = """
create schema marts;
create table marts.commercial_activation_snapshot (
    quarter date, region text, customer text, segment text, revenue_usd double precision,
    qoq_change double precision, yoy_change double precision, has_c2 boolean, signal text
);
create table marts.c2_adoption_scorecard (
    month date, quarter date, c2_service_family text, c2_plan text, region text, customer_tier text,
    active_customers bigint, new_orders bigint, revenue_usd double precision, quantity bigint,
    avg_seats double precision
);
create table marts.svr_rm_customer_quarterly (
    quarter date, customer text, tier text, quantity bigint, revenue_usd double precision,
    customer_rank bigint, is_top_customer boolean
);
"""

INSERT_SELLOUT = (
    "insert into forecast.sellout (forecast_run_id, snapshot_id, cohort, target_quarter, metric, point, model,"
    " reason, region) values ($1, 's', 'region', $2, $3, $4, 'ets', '', $5)"
)
INSERT_SVR_RM = (
    "insert into forecast.svr_rm (forecast_run_id, snapshot_id, cohort, target_quarter, metric, point, model,"
    " reason, tier, customer) values ($1, 's', $2, $3, $4, $5, 'ets', '', $6, $7)"
)


@pytest.fixture
async def pool(isolated_pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    sources = migrate.installed_sources(("ops", "activation", "forecast"))
    await asyncio.to_thread(migrate.apply_migrations, isolated_pg_dsn, sources)
    connection_pool = await db.create_pool(isolated_pg_dsn)
    try:
        await fill_marts_and_forecasts(connection_pool)
        yield connection_pool
    finally:
        await connection_pool.close()


async def fill_marts_and_forecasts(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        await connection.execute(MARTS_DDL)
        await db.copy_frame(connection, "marts", "commercial_activation_snapshot", snapshot())
        await db.copy_frame(connection, "marts", "c2_adoption_scorecard", c2_scorecard())
        await connection.executemany(
            "insert into marts.svr_rm_customer_quarterly values ($1, $2, 'T1', $3, $4, 1, true)",
            [
                (Q2, "Acme", 2, 100_000.0),
                (Q3, "Acme", 3, 120_000.0),
                (Q3, "Beta", 0, 0.0),  # returns cancel the quarter's purchases: not buying SVR-RM
                (Q3, "Dune", 1, 50_000.0),
                (Q3, "Ghost", 1, 9_000.0),  # no revenue in the activation snapshot that quarter
            ],
        )
        await connection.executemany(
            INSERT_SELLOUT,
            [
                ("run-f1", Q4, "revenue_usd", 184_000.0, "FR"),
                ("run-f1", Q4, "quantity", 99.0, "FR"),
                ("run-f0", Q4, "revenue_usd", 1.0, "DE"),  # an older forecast run of the same snapshot
            ],
        )
        await connection.executemany(
            INSERT_SVR_RM,
            [
                ("run-f1", "customer", Q4, "revenue_usd", 130_000.0, "TOTAL", "Acme"),
                ("run-f1", "customer", Q4, "quantity", 4.0, "TOTAL", "Acme"),
                ("run-f1", "overall", Q4, "revenue_usd", 500_000.0, "T1", None),
            ],
        )
