"""Each process gets its own credentials and nobody else's; passwords are never printed; the deployment's
setup job (syno_shared.provision) gives the roles their passwords, migrates as the owner and makes the streams."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import nats
import pytest

from syno_cli.pipeline import service_env
from syno_shared import access, deadletter, migrate, provision
from syno_shared.embedded import EmbeddedNats, Endpoints
from syno_shared.settings import Settings

pytestmark = pytest.mark.integration


def secrets_of(endpoints: Endpoints) -> dict[str, str]:
    """Every password the runtime holds, by whose it is."""
    found = {
        "operator": urlsplit(endpoints.nats_url).password or "",
        "owner": urlsplit(endpoints.pg_dsn).password or "",
    }
    for service, credentials in endpoints.credentials.items():
        assert credentials.nats_password is not None and credentials.pg_password is not None
        found[f"{service} nats"] = credentials.nats_password.get_secret_value()
        found[f"{service} pg"] = credentials.pg_password.get_secret_value()
    assert all(found.values())
    return found


@pytest.mark.parametrize("service", access.SERVICES)
def test_a_service_process_gets_its_own_credentials_and_nobody_elses(
    endpoints: Endpoints, data_dir: Path, service: str
) -> None:
    env = service_env(Settings(data_dir=data_dir), endpoints, service)
    given = [value for key, value in env.items() if os.environ.get(key) != value]  # what the runtime adds
    assert env["SYNO_NATS_USER"] == service
    assert urlsplit(env["SYNO_NATS_URL"]).password is None
    assert urlsplit(env["SYNO_PG_DSN"]).username == access.pg_role(service)
    assert env["SYNO_MIGRATE_ON_START"] == "false"  # its role cannot migrate: the owner did
    own = {f"{service} nats", f"{service} pg"}
    leaked = [
        who for who, password in secrets_of(endpoints).items() if who not in own and any(password in v for v in given)
    ]
    assert leaked == []


def test_passwords_are_never_printed(endpoints: Endpoints, tmp_path: Path) -> None:
    printed = repr(endpoints) + str(endpoints) + repr(EmbeddedNats(tmp_path))
    printed += repr(Settings(nats_user="ingestion", nats_password="hunter2-hunter2")) + repr(endpoints.credentials)
    assert "hunter2" not in printed
    assert [who for who, password in secrets_of(endpoints).items() if password in printed] == []


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path)
    server.start()
    yield server
    server.stop()


def test_the_setup_job_gives_roles_their_passwords_migrates_and_makes_the_streams(
    endpoints: Endpoints, isolated_pg_dsn: str, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    """What compose's `setup` service runs before the services: python -m syno_shared.provision."""
    reader_file = tmp_path / "reader-password"
    reader_file.write_text(secrets.token_urlsafe(16) + "\n")
    environ = {
        provision.pg_password_variable("syno_ingestion"): secrets.token_urlsafe(16),
        f"{provision.pg_password_variable(access.READER_ROLE)}_FILE": str(reader_file),  # a Docker secret
    }
    settings = Settings(
        pg_dsn=isolated_pg_dsn,
        nats_url=nats_server.address,
        nats_user=access.OPERATOR,
        nats_password=nats_server.passwords[access.OPERATOR],
    )
    try:
        provision.setup(settings, environ)

        async def check() -> None:
            for role, password in (
                ("syno_ingestion", environ["PG_INGESTION_PASSWORD"]),
                (access.READER_ROLE, reader_file.read_text().strip()),
            ):
                connection = await asyncpg.connect(access.with_credentials(isolated_pg_dsn, role, password))
                assert await connection.fetchval("select current_user") == role
                await connection.close()
            connection = await nats.connect(nats_server.url)
            try:
                names = await connection.jetstream().streams_info()
            finally:
                await connection.close()
            assert {info.config.name for info in names} == {"SYNO", deadletter.DLQ_STREAM, deadletter.ADVISORY_STREAM}

        asyncio.run(check())
        assert "0005_ops_roles" in migrate.applied_migrations(isolated_pg_dsn)
    finally:  # the cluster's roles serve every test: put the runtime's passwords back
        provision.provision_roles(
            endpoints.pg_dsn,
            {
                "syno_ingestion": endpoints.credentials["ingestion"].pg_password.get_secret_value()  # type: ignore[union-attr]
            },
        )


def test_the_setup_job_needs_the_owner_and_the_operator() -> None:
    with pytest.raises(provision.ProvisionError, match="SYNO_PG_DSN"):
        provision.setup(Settings(pg_dsn=None, nats_url=None))
