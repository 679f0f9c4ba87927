"""Publication's database edge: the build lock, the builds' ops rows, the stable views, rollback and retention.

A snapshot is built aside (its own staging, intermediate and marts schemas, see `snapshots`), tested and
gated there; publishing it re-points the stable names `marts.<mart>` (views) at its marts schema, in the
caller's transaction, together with ops.published_snapshot. One build at a time: the whole run, from the
load to the publication and the retention, holds a session advisory lock on a connection of its own, and
every write of the publication goes through that connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, TypeVar

import asyncpg
from opentelemetry import trace

from syno_shared.errors import InputRejected, TransientError
from syno_shared.logging import get_logger
from syno_transform.snapshots import LAYERS, STABLE_SCHEMA, KeptBuild, SnapshotAge, build_schema, builds_to_drop

BUILD_LOCK_KEY: Final = 0x5359_4254  # "SYBT": one transform build at a time, across replicas
LOCK_TIMEOUT: Final = "5s"  # how long a publication waits for a reader of a stable name before trying again
PUBLISH_ATTEMPTS: Final = 5
ROLLBACK: Final = "rollback"

T = TypeVar("T")
tracer = trace.get_tracer("syno.transform")


def quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@contextlib.asynccontextmanager
async def build_lock(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """Wait for the build lock and hold it for the block, on a connection of its own (yielded: publish through
    it). A replica that dies loses its connection, and the lock with it; the pool's reset releases it too."""
    async with pool.acquire() as connection:
        with tracer.start_as_current_span("transform.wait_for_build_lock"):  # a wait shows in the trace
            await connection.execute("select pg_advisory_lock($1)", BUILD_LOCK_KEY)
        try:
            yield connection
        finally:
            # A broken or interrupted connection lost the lock with its session (the pool resets it anyway).
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await connection.execute("select pg_advisory_unlock($1)", BUILD_LOCK_KEY)


# --- the builds -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedBuild:
    """The build the stable names show now."""

    snapshot_id: str
    build_id: str
    run_id: str
    age: SnapshotAge
    rows_loaded: int
    marts: list[str]


async def published_build(connection: asyncpg.Connection) -> PublishedBuild | None:
    row = await connection.fetchrow(
        "select p.snapshot_id, p.build_id, p.run_id, b.data_freshness, b.landed_at, b.rows_loaded, b.marts"
        " from ops.published_snapshot as p join ops.snapshot_builds as b using (build_id)"
        " order by p.publication_id desc limit 1"
    )
    if row is None:
        return None
    return PublishedBuild(
        snapshot_id=row["snapshot_id"],
        build_id=row["build_id"],
        run_id=row["run_id"],
        age=SnapshotAge(data_freshness=row["data_freshness"], landed_at=row["landed_at"]),
        rows_loaded=int(row["rows_loaded"]),
        marts=list(row["marts"]),
    )


async def start_build(
    connection: asyncpg.Connection,
    *,
    build_id: str,
    snapshot_id: str,
    run_id: str,
    data_freshness: date | None,
    landed_at: datetime,
    rows_loaded: int,
) -> None:
    await connection.execute(
        "insert into ops.snapshot_builds"
        " (build_id, snapshot_id, run_id, status, data_freshness, landed_at, rows_loaded)"
        " values ($1, $2, $3, 'building', $4, $5, $6)",
        build_id,
        snapshot_id,
        run_id,
        data_freshness,
        landed_at,
        rows_loaded,
    )


async def finish_build(
    connection: asyncpg.Connection, build_id: str, *, is_passed: bool, marts: Sequence[str] = ()
) -> None:
    await connection.execute(
        "update ops.snapshot_builds set status = $2, marts = $3, finished_at = now() where build_id = $1",
        build_id,
        "passed" if is_passed else "failed",
        list(marts),
    )


# --- publication ------------------------------------------------------------------------------------------


async def publish(
    connection: asyncpg.Connection,
    *,
    build_id: str,
    marts: Sequence[str],
    publication: str,
    previous: PublishedBuild | None,
) -> None:
    """Point the stable names at the build and record the publication (call inside a transaction)."""
    await point_stable_names(
        connection, marts_schema=build_schema(build_id), marts=marts, previous_marts=previous.marts if previous else ()
    )
    await connection.execute(
        "insert into ops.published_snapshot (snapshot_id, run_id, build_id, publication, previous_snapshot_id,"
        " previous_build_id) select snapshot_id, run_id, build_id, $2, $3, $4 from ops.snapshot_builds"
        " where build_id = $1",
        build_id,
        publication,
        previous.snapshot_id if previous else None,
        previous.build_id if previous else None,
    )


async def point_stable_names(
    connection: asyncpg.Connection, *, marts_schema: str, marts: Sequence[str], previous_marts: Sequence[str]
) -> None:
    """`marts.<mart>` becomes `select * from <marts_schema>.<mart>` for every mart, all in the caller's transaction,
    so a reader sees the old build or the new one, never a mix. A stable name whose mart the build no longer
    has is dropped; one that is still a table (dbt built in place before publication existed) becomes a view."""
    await connection.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
    existing = {
        row["relname"]: row["relkind"]
        for row in await connection.fetch(
            "select c.relname, c.relkind::text as relkind from pg_class as c"
            " join pg_namespace as n on n.oid = c.relnamespace"
            " where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm')",
            STABLE_SCHEMA,
        )
    }
    touched = sorted(name for name in {*marts, *previous_marts} if name in existing)
    if touched:  # every lock first, in one order, so two statements never wait for each other halfway
        await connection.execute(f"lock table {', '.join(_stable(name) for name in touched)} in access exclusive mode")
    for name in sorted(marts):
        source = f"select * from {quoted(marts_schema)}.{quoted(name)}"
        kind = existing.get(name)
        if kind == "v":
            try:
                async with connection.transaction():  # a savepoint: the columns may have changed
                    await connection.execute(f"create or replace view {_stable(name)} as {source}")
                continue
            except asyncpg.InvalidTableDefinitionError:
                await connection.execute(f"drop view {_stable(name)}")
        elif kind is not None:
            await connection.execute(f"drop {'materialized view' if kind == 'm' else 'table'} {_stable(name)}")
        await connection.execute(f"create view {_stable(name)} as {source}")
    for name in sorted(set(previous_marts) - set(marts)):
        if existing.get(name) == "v":
            await connection.execute(f"drop view {_stable(name)}")


def _stable(name: str) -> str:
    return f"{quoted(STABLE_SCHEMA)}.{quoted(name)}"


async def with_publication_retries(
    connection: asyncpg.Connection, write: Callable[[asyncpg.Connection], Awaitable[T]]
) -> T:
    """Run `write` in one transaction; a reader holding a stable name past the lock timeout (or a deadlock with
    one) rolls it back and it is tried again, a few times, before the run is retried as a whole."""
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            async with connection.transaction():
                return await write(connection)
        except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError) as error:
            get_logger().warning("publication_waiting_for_readers", attempt=attempt, error=str(error))
            if attempt == PUBLISH_ATTEMPTS:
                raise TransientError(
                    f"the stable mart names stayed busy after {attempt} attempts: {error}", code="publication_busy"
                ) from error
            await asyncio.sleep(attempt)
    raise AssertionError("unreachable")


# --- rollback (an operator's `syno publish SNAPSHOT`) -------------------------------------------------------


@dataclass(frozen=True)
class BuildRow:
    """A build still kept, as `syno publish` lists it."""

    build_id: str
    snapshot_id: str
    run_id: str
    data_freshness: date | None
    landed_at: datetime
    finished_at: datetime | None
    is_published: bool
    last_published_at: datetime | None


async def kept_builds(connection: asyncpg.Connection) -> list[BuildRow]:
    """Builds that passed and whose schemas are still there, newest first: what can be published."""
    rows = await connection.fetch(
        "select b.build_id, b.snapshot_id, b.run_id, b.data_freshness, b.landed_at, b.finished_at,"
        " b.build_id = (select build_id from ops.published_snapshot order by publication_id desc limit 1)"
        " as is_published,"
        " (select max(published_at) from ops.published_snapshot as p where p.build_id = b.build_id)"
        " as last_published_at"
        " from ops.snapshot_builds as b where b.status = 'passed' and b.dropped_at is null"
        " order by b.finished_at desc"
    )
    return [BuildRow(**dict(row)) for row in rows]


async def publish_kept_build(pool: asyncpg.Pool, snapshot: str) -> tuple[BuildRow, PublishedBuild | None]:
    """Point the stable names at the newest kept build of `snapshot` (its id, or a unique start of it), under
    the build lock, in one transaction. Returns the build and what was published before."""
    async with build_lock(pool) as connection:
        candidates = [row for row in await kept_builds(connection) if row.snapshot_id.startswith(snapshot)]
        snapshots = sorted({row.snapshot_id for row in candidates})
        if not candidates:
            raise InputRejected(
                f"no kept build of snapshot '{snapshot}': only the last published and checked builds stay"
                " (`syno publish` lists them)",
                code="build_not_kept",
            )
        if len(snapshots) > 1:
            raise InputRejected(f"'{snapshot}' starts {len(snapshots)} snapshots: give more of it", code="ambiguous")
        chosen = candidates[0]
        marts = await connection.fetchval("select marts from ops.snapshot_builds where build_id = $1", chosen.build_id)

        async def write(connection: asyncpg.Connection) -> PublishedBuild | None:
            previous = await published_build(connection)
            await publish(connection, build_id=chosen.build_id, marts=marts, publication=ROLLBACK, previous=previous)
            return previous

        previous = await with_publication_retries(connection, write)
    return chosen, previous


# --- retention --------------------------------------------------------------------------------------------


async def drop_old_builds(connection: asyncpg.Connection, *, keep: int) -> list[str]:
    """Drop the schemas of every build but the published one and the last `keep` published and passed ones
    (call under the build lock, outside a transaction). A drop that waits on a reader is left for next time."""
    published = await published_build(connection)
    rows = await connection.fetch(
        "select b.build_id, case when b.status = 'passed' then b.finished_at end as passed_at,"
        " (select max(published_at) from ops.published_snapshot as p where p.build_id = b.build_id)"
        " as last_published_at from ops.snapshot_builds as b where b.dropped_at is null"
    )
    builds = [KeptBuild(**dict(row)) for row in rows]
    dropped = []
    for build_id in builds_to_drop(builds, published=published.build_id if published else None, keep=keep):
        schemas = ", ".join(quoted(build_schema(build_id, layer)) for layer in reversed(LAYERS))
        try:
            async with connection.transaction():
                await connection.execute(f"set local lock_timeout = '{LOCK_TIMEOUT}'")
                await connection.execute(f"drop schema if exists {schemas} cascade")
                await connection.execute(
                    "update ops.snapshot_builds set dropped_at = now() where build_id = $1", build_id
                )
        except asyncpg.LockNotAvailableError:
            get_logger().warning("build_drop_deferred", build_id=build_id, reason="a reader holds its tables")
            continue
        dropped.append(build_id)
    return dropped
