"""Versioned schema migrations (yoyo-migrations), applied by `syno migrate` and by every service at start-up.

Each package that owns tables ships a folder of numbered SQL files and names it in the
`syno.migrations` entry-point group as `package:folder` (the common package owns the ops trail, each service its own
schemas). Files are applied once, in order, each in its own transaction, and recorded in yoyo's
tables. A PostgreSQL advisory lock serialises replicas starting together and the `migrate` command;
it dies with its connection, so a process killed mid-migration never leaves the database locked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from urllib.parse import urlsplit, urlunsplit

import psycopg
from yoyo import get_backend, read_migrations  # type: ignore[import-untyped]  # yoyo ships no type information

ENTRY_POINT_GROUP = "syno.migrations"
_LOCK_KEY = 0x5359_4E4F  # "SYNO": one advisory lock for every migration run


@dataclass(frozen=True)
class MigrationSource:
    """A package's migrations folder: `owner` is the entry-point name; the SQL files are `package/folder/*.sql`."""

    owner: str
    package: str
    folder: str = "migrations"

    @property
    def directory(self) -> str:
        return str(resources.files(self.package) / self.folder)


def installed_sources(owners: Iterable[str] | None = None) -> list[MigrationSource]:
    """The migration sources of the installed packages (`ops` first), optionally only the named owners."""
    wanted = set(owners) if owners is not None else None
    found = [
        MigrationSource(owner=entry.name, package=entry.module, folder=entry.attr)
        for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)
        if wanted is None or entry.name in wanted
    ]
    return sorted(found, key=lambda source: (source.owner != "ops", source.owner))


def yoyo_uri(dsn: str) -> str:
    """A libpq DSN as yoyo's URI: the psycopg 3 backend, the rest (host, socket dir, database) unchanged."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def apply_migrations(dsn: str, sources: Sequence[MigrationSource]) -> list[str]:
    """Apply every pending migration of `sources`, under the advisory lock; returns the ids applied."""
    with psycopg.connect(dsn, autocommit=True) as lock_connection:
        lock_connection.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        backend = get_backend(yoyo_uri(dsn))
        try:
            # Only one migrator holds the advisory lock, so a yoyo lock row left here is a dead process's.
            backend.break_lock()
            migrations = read_migrations(*(source.directory for source in sources))
            pending = backend.to_apply(migrations)
            with backend.lock():
                backend.apply_migrations(pending)
            return [migration.id for migration in pending]
        finally:
            backend.connection.close()
            lock_connection.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))


def applied_migrations(dsn: str) -> list[str]:
    """Ids of the migrations recorded as applied, oldest first."""
    backend = get_backend(yoyo_uri(dsn))
    try:
        return [row[0] for row in backend.execute("select migration_id from _yoyo_migration order by applied_at_utc")]
    finally:
        backend.connection.close()
