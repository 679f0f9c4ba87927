"""The CLI's connections to a deployment's servers, and one line naming the setting to fix when one cannot be
reached or refuses the login (not a traceback).

Every command ends in `explain` on such an error (`syno_cli.main.main`), so a wrong SYNO_NATS_URL,
SYNO_NATS_PASSWORD or SYNO_PG_DSN reads the same whichever command met it.
"""

from __future__ import annotations

import asyncpg
import nats
import nats.errors
from nats.aio.client import Client

from syno_shared.logging import redact_text


def explain(error: BaseException) -> str | None:
    """What to fix for an error reaching NATS or PostgreSQL; None for any other error (it is a bug: traceback)."""
    text = redact_text(str(error)) or type(error).__name__
    if isinstance(error, nats.errors.NoServersError):
        return f"NATS cannot be reached ({text}): check SYNO_NATS_URL and that the server runs"
    if isinstance(error, nats.errors.Error) and "authorization" in text.lower():
        return f"NATS refused the login ({text}): check SYNO_NATS_USER and SYNO_NATS_PASSWORD"
    if isinstance(error, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError):
        return f"PostgreSQL refused the login ({text}): check the role and password in SYNO_PG_DSN"
    if isinstance(error, asyncpg.InvalidCatalogNameError):
        return f"PostgreSQL has no such database ({text}): check the database name in SYNO_PG_DSN"
    if isinstance(error, ConnectionRefusedError | TimeoutError) or (
        isinstance(error, OSError) and error.errno is not None
    ):
        return f"a server cannot be reached ({text}): check SYNO_NATS_URL and SYNO_PG_DSN and that the servers run"
    return None


async def connect_nats(nats_url: str) -> Client:
    """One attempt, quietly: a refused login or an absent server is an error to show, not minutes of retries
    with nats-py's own tracebacks on stderr. A refused login is raised as such (nats-py reports it only to
    its error callback, then says no server is available)."""
    seen: list[Exception] = []

    async def keep(error: Exception) -> None:
        seen.append(error)

    try:
        return await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=1, error_cb=keep)
    except nats.errors.NoServersError:
        refused = [error for error in seen if "authorization" in str(error).lower()]
        if refused:
            raise refused[-1] from None
        raise
