"""The CLI logs in as SYNO_NATS_USER / SYNO_NATS_PASSWORD on a server with users, as a deployment runs it.

A deployment's NATS has one user per service and an operator (deploy/nats/nats.conf); the operator's password
comes from the environment, never in the URL people paste. Same server as the embedded runtime's, users on.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nats
import pytest

from syno_shared import access, bus
from syno_shared.embedded import EmbeddedNats

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    running = EmbeddedNats(tmp_path)
    running.start()
    asyncio.run(bus.ensure_streams(running.url, "SYNO"))
    yield running
    running.stop()


async def publish_landed(url: str, snapshot_id: str) -> None:
    connection = await nats.connect(url)
    try:
        body = json.dumps({"run_id": "r", "snapshot_id": snapshot_id}).encode()
        await connection.jetstream().publish(bus.WORKBOOK_LANDED, body, headers={"Nats-Msg-Id": snapshot_id})
    finally:
        await connection.close()


def syno(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syno_cli", *args],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SYNO_NATS")}, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_replay_and_dead_letters_log_in_as_the_configured_user(server: EmbeddedNats) -> None:
    asyncio.run(publish_landed(server.url, "a" * 64))
    login = urlsplit(server.url)
    assert login.username == access.OPERATOR and login.password  # the runtime's operator, to hand to the CLI
    bare = access.without_credentials(server.url)
    as_operator = {
        "SYNO_NATS_URL": bare,
        "SYNO_NATS_USER": access.OPERATOR,
        "SYNO_NATS_PASSWORD": unquote(login.password),
    }

    replayed = syno(as_operator, "replay", bus.WORKBOOK_LANDED, "--snapshot", "a" * 64, "--dry-run")
    assert replayed.returncode == 0, replayed.stderr
    assert "would replay workbook.landed seq 1" in replayed.stderr
    letters = syno(as_operator, "dlq", "list", "--json")
    assert letters.returncode == 0, letters.stderr
    assert json.loads(letters.stdout) == []

    # Without the user, or with a wrong password, the server refuses: the CLI fails, it does not hang.
    for env in ({"SYNO_NATS_URL": bare}, {**as_operator, "SYNO_NATS_PASSWORD": "guessed"}):
        refused = syno(env, "replay", bus.WORKBOOK_LANDED, "--snapshot", "a" * 64, "--dry-run")
        assert refused.returncode == 2
        assert "would replay" not in refused.stderr
        assert "NATS refused the login" in refused.stderr and "SYNO_NATS_PASSWORD" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert unquote(login.password) not in refused.stderr + refused.stdout
