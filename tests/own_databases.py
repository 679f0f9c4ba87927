"""Databases of their own on the embedded PostgreSQL server, for tests that compare or own a whole warehouse."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def database_dsn(dsn: str, database: str) -> str:
    """The same server, another database (the DSN's path names the database)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def new_database(server_dsn: str, prefix: str = "test") -> str:
    """Create an empty database on the server; its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(server_dsn)
        try:
            await connection.execute(f"create database {name}")
        finally:
            await connection.close()

    asyncio.run(create())
    return database_dsn(server_dsn, name)
