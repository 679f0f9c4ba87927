"""Least privilege set up: the roles' passwords, the migrations as the owner, the streams as the operator.

The embedded runtime calls `provision_roles` with random passwords when it starts PostgreSQL; the compose
deployment runs `python -m syno_shared.provision` once before the services start (its `setup` service):

- SYNO_PG_DSN is the owner role's DSN: it creates any missing role, lets each role whose password is set
  (PG_INGESTION_PASSWORD, ..., PG_READER_PASSWORD, PG_MONITOR_PASSWORD; or a `<NAME>_FILE` holding it)
  log in with that password, and applies every installed package's migrations, whose post-apply hook
  grants each role what it needs;
- SYNO_NATS_URL with SYNO_NATS_USER / SYNO_NATS_PASSWORD of the operator creates or updates the streams
  (service users may not update them).

Passwords never appear in a statement the server could log: they are hashed (SCRAM-SHA-256) on this side.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from syno_shared import access, bus, migrate
from syno_shared.errors import SynoError
from syno_shared.logging import configure_logging, get_logger
from syno_shared.settings import Settings


class ProvisionError(SynoError):
    code = "provision_failed"


def pg_password_variable(role: str) -> str:
    """The environment variable holding a role's password in the deployment: syno_reader -> PG_READER_PASSWORD."""
    return f"PG_{role.removeprefix('syno_').upper()}_PASSWORD"


def secret_from_environment(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A secret from the variable `name`, or from the file the variable `<name>_FILE` names (Docker secrets)."""
    environ = os.environ if environ is None else environ
    if environ.get(name):
        return environ[name]
    path = environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def provision_roles(owner_dsn: str, passwords: Mapping[str, str]) -> list[str]:
    """Create every role of `access.PG_ROLES` that is missing (no login), and let each role in `passwords`
    log in with its password. Returns the roles that can log in now. Run as a role with CREATEROLE."""
    with psycopg.connect(owner_dsn, autocommit=True) as connection:
        for role in access.PG_ROLES:
            if connection.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone() is None:
                # Another process may create it between the check and the create: that is fine too.
                with contextlib.suppress(psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                    connection.execute(sql.SQL("create role {} nologin").format(sql.Identifier(role)))
            password = passwords.get(role)
            if password is not None:
                hashed = connection.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256")
                connection.execute(
                    sql.SQL("alter role {} with login password {}").format(
                        sql.Identifier(role), sql.Literal(hashed.decode())
                    )
                )
    return [role for role in access.PG_ROLES if role in passwords]


def setup(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """What the deployment runs before the services: roles and passwords, migrations, streams."""
    log = get_logger()
    if settings.pg_dsn is None or settings.nats_url is None:
        raise ProvisionError("setup needs SYNO_PG_DSN (the owner role) and SYNO_NATS_URL (with the operator user)")
    passwords = {
        role: password
        for role in access.PG_ROLES
        if (password := secret_from_environment(pg_password_variable(role), environ)) is not None
    }
    roles = provision_roles(settings.pg_dsn, passwords)
    log.info("roles_provisioned", roles_with_login=roles)
    applied = migrate.apply_migrations(settings.pg_dsn, migrate.installed_sources())
    log.info("migrations_applied", migrations=applied)
    password = settings.nats_password.get_secret_value() if settings.nats_password is not None else None
    asyncio.run(bus.ensure_streams(settings.nats_url, settings.stream_name, user=settings.nats_user, password=password))
    log.info("streams_ready", stream=settings.stream_name, nats_user=settings.nats_user)


def main() -> None:
    settings = Settings()
    configure_logging("setup", settings.log_format)
    setup(settings)


if __name__ == "__main__":
    main()
