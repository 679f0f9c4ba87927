"""No role can do more than its job in the warehouse: PostgreSQL refuses what a role may not do.

The session's embedded PostgreSQL has every role the deployment has (syno_shared.access), created by the
runtime with random passwords and password logins only. Each test gets a database of its own, migrated by
the owner (whose post-apply hook grants each role its list), with one snapshot published the way the
transform publishes it: a build's marts schema created by syno_transform, and a stable view in marts.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from own_databases import new_database

from syno_shared import access, migrate, provision
from syno_shared.embedded import Endpoints

pytestmark = pytest.mark.integration

BUILD = "b_0123456789ab_89abcdef_marts"


@pytest.fixture(scope="module")
def bi_passwords(endpoints: Endpoints) -> dict[str, str]:
    """The read-only roles get passwords the way the deployment's setup gives them (the services' are known)."""
    passwords = {access.READER_ROLE: secrets.token_urlsafe(16), access.MONITOR_ROLE: secrets.token_urlsafe(16)}
    provision.provision_roles(endpoints.pg_dsn, passwords)
    return passwords


@pytest.fixture(scope="module")
def warehouse_dsn(endpoints: Endpoints) -> str:
    """A database of this module's own, migrated by the owner (read-only checks share it)."""
    dsn: str = new_database(endpoints.pg_dsn, "security")
    migrate.apply_migrations(dsn, migrate.installed_sources())
    return dsn


async def connect_all(endpoints: Endpoints, dsn: str, bi_passwords: dict[str, str]) -> dict[str, asyncpg.Connection]:
    """One connection per role, logged in with its own password."""
    passwords = {
        **{
            credentials.pg_role: credentials.pg_password.get_secret_value()
            for credentials in endpoints.credentials.values()
            if credentials.pg_role is not None and credentials.pg_password is not None
        },
        **bi_passwords,
    }
    assert sorted(passwords) == sorted(access.PG_ROLES)
    return {role: await asyncpg.connect(access.with_credentials(dsn, role, pw)) for role, pw in passwords.items()}


async def publish_a_build(transform: asyncpg.Connection) -> None:
    """What the transform does for a snapshot: dbt builds into a schema of its own, then a stable view."""
    await transform.execute(f"create schema {BUILD}")
    await transform.execute(f"create table {BUILD}.sellout_quarterly as select date '2024-01-01' as quarter, 1 as qty")
    await transform.execute(f"create view marts.sellout_quarterly as select * from {BUILD}.sellout_quarterly")


@pytest.fixture(scope="module")
async def warehouse(
    endpoints: Endpoints, warehouse_dsn: str, bi_passwords: dict[str, str]
) -> AsyncIterator[dict[str, asyncpg.Connection]]:
    connections = await connect_all(endpoints, warehouse_dsn, bi_passwords)
    await publish_a_build(connections["syno_transform"])
    yield connections
    for connection in connections.values():
        await connection.close()


ALLOWED = [
    ("syno_ingestion", "select count(*) from ops.stage_runs"),
    (
        "syno_ingestion",
        "insert into ops.ingestion_files (snapshot_id, file_name, outcome) values ('s', 'f', 'accepted')",
    ),
    ("syno_transform", "delete from raw.sales_lines where snapshot_id = 's'"),
    ("syno_transform", "truncate ref.countries"),
    ("syno_transform", "select count(*) from marts.sellout_quarterly"),
    ("syno_forecast", f"select count(*) from {BUILD}.sellout_quarterly"),
    ("syno_forecast", "delete from forecast.svr_rm where snapshot_id = 's'"),
    ("syno_activation", f"select count(*) from {BUILD}.sellout_quarterly"),
    ("syno_activation", "select count(*) from forecast.svr_rm"),
    ("syno_activation", "delete from activation.storylines where snapshot_id = 's'"),
    ("syno_reader", "select count(*) from marts.sellout_quarterly"),
    ("syno_reader", "select count(*) from forecast.svr_rm"),
    ("syno_reader", "select count(*) from activation.storylines"),
    ("syno_monitor", "select count(*) from ops.stage_runs"),
    ("syno_monitor", "select count(*) from ops.forecast_runs"),
]

REFUSED = [
    # ingestion cannot touch the marts, the raw lines, the forecasts, nor other stages' tables.
    ("syno_ingestion", "select count(*) from marts.sellout_quarterly"),
    ("syno_ingestion", f"select count(*) from {BUILD}.sellout_quarterly"),
    ("syno_ingestion", "select count(*) from raw.sales_lines"),
    ("syno_ingestion", "insert into forecast.svr_rm (snapshot_id) values ('s')"),
    ("syno_ingestion", "delete from ops.snapshot_builds"),
    ("syno_ingestion", "create schema b_ffffffffffff_ffffffff_marts"),
    # transform cannot write forecasts, storylines or activation's outbox.
    ("syno_transform", "delete from forecast.svr_rm"),
    ("syno_transform", "delete from activation.storylines"),
    ("syno_transform", "select count(*) from ops.activation_outbox"),
    # forecast reads the builds' marts but cannot change them, nor read raw lines.
    ("syno_forecast", f"delete from {BUILD}.sellout_quarterly"),
    ("syno_forecast", "select count(*) from raw.sales_lines"),
    ("syno_forecast", "delete from activation.storylines"),
    # activation only reads marts and forecasts: no writes there, nothing of raw.
    ("syno_activation", f"insert into {BUILD}.sellout_quarterly values (date '2024-04-01', 2)"),
    ("syno_activation", "drop view marts.sellout_quarterly"),
    ("syno_activation", "insert into raw.sales_lines (snapshot_id) values ('s')"),
    ("syno_activation", "select count(*) from raw.sales_lines"),
    ("syno_activation", "delete from forecast.svr_rm"),
    ("syno_activation", "update ops.snapshot_builds set status = 'failed'"),
    # the BI roles write nothing; Metabase's reads nothing of ops, raw or ref; Grafana's nothing of raw.
    ("syno_reader", "insert into activation.storylines (snapshot_id) values ('s')"),
    ("syno_reader", "delete from forecast.svr_rm"),
    ("syno_reader", "create table marts.mine (x int)"),
    ("syno_reader", "select count(*) from ops.stage_runs"),
    ("syno_reader", "select count(*) from raw.sales_lines"),
    ("syno_reader", "select count(*) from ref.countries"),
    ("syno_reader", f"select count(*) from {BUILD}.sellout_quarterly"),
    ("syno_monitor", "select count(*) from raw.sales_lines"),
    ("syno_monitor", "select count(*) from ops.stage_completions"),
    ("syno_monitor", "delete from ops.stage_runs"),
    # and nobody grants itself more.
    ("syno_transform", "create role intruder superuser"),
    ("syno_activation", "grant select on raw.sales_lines to syno_activation"),
]


@pytest.mark.parametrize(("role", "statement"), ALLOWED)
async def test_each_role_can_do_its_job(warehouse: dict[str, asyncpg.Connection], role: str, statement: str) -> None:
    transaction = warehouse[role].transaction()
    await transaction.start()
    try:
        await warehouse[role].execute(statement)
    finally:
        await transaction.rollback()  # the module's database stays as it was


@pytest.mark.parametrize(("role", "statement"), REFUSED)
async def test_each_role_is_refused_what_is_not_its_job(
    warehouse: dict[str, asyncpg.Connection], role: str, statement: str
) -> None:
    with pytest.raises((asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError)):
        await warehouse[role].execute(statement)


async def test_the_bi_roles_sessions_are_read_only(warehouse: dict[str, asyncpg.Connection]) -> None:
    for role in (access.READER_ROLE, access.MONITOR_ROLE):
        assert await warehouse[role].fetchval("show default_transaction_read_only") == "on"
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await warehouse[role].execute("create temporary table scratch (x int)")


async def test_a_role_logs_in_only_with_its_own_password(endpoints: Endpoints, isolated_pg_dsn: str) -> None:
    ingestion = endpoints.credentials["ingestion"]
    assert ingestion.pg_password is not None
    for role, password in (
        ("syno_ingestion", "guessed"),
        ("syno_transform", ingestion.pg_password.get_secret_value()),
        ("postgres", ingestion.pg_password.get_secret_value()),
    ):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(access.with_credentials(isolated_pg_dsn, role, password))


async def test_grants_follow_the_migrations_not_the_past(
    endpoints: Endpoints, isolated_pg_dsn: str, bi_passwords: dict[str, str]
) -> None:
    """A grant made by hand is taken back when migrations run again (the post-apply hook starts from nothing);
    what the transform created stays readable by those who read it."""
    await asyncio.to_thread(migrate.apply_migrations, isolated_pg_dsn, migrate.installed_sources())
    roles = await connect_all(endpoints, isolated_pg_dsn, bi_passwords)
    owner = await asyncpg.connect(isolated_pg_dsn)
    try:
        await publish_a_build(roles["syno_transform"])
        await owner.execute("grant usage on schema raw to syno_activation")
        await owner.execute("grant select on raw.sales_lines to syno_activation")
        assert await roles["syno_activation"].fetchval("select count(*) from raw.sales_lines") == 0
        await owner.execute("delete from _yoyo_migration where migration_id = '0005_ops_roles'")
        applied = await asyncio.to_thread(migrate.apply_migrations, isolated_pg_dsn, migrate.installed_sources())
        assert applied == ["0005_ops_roles"]
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await roles["syno_activation"].fetchval("select count(*) from raw.sales_lines")
        assert await roles["syno_reader"].fetchval("select count(*) from marts.sellout_quarterly") == 1
        assert await roles["syno_forecast"].fetchval(f"select count(*) from {BUILD}.sellout_quarterly") == 1
    finally:
        await owner.close()
        for connection in roles.values():
            await connection.close()
