"""Metabase refresh against a local Metabase stand-in that answers like the paid and open-source editions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx
import pytest
import pytest_asyncio
from activation_fakes import LocalHTTPServer, Request

from syno_activation.metabase import MetabaseConfig, MetabaseResult, MetabaseStep, refresh_dashboards, refresh_metabase
from syno_shared.events import DeliveryResult

SNAPSHOT = "5f2c" + "ab" * 30
API_KEY = "mb_SECRET_api_key_123"
SESSION = "session-token-abc"
SENTINEL = 7


@dataclass
class FakeMetabase:
    """The documented endpoints: /api/session, /api/cache/invalidate, /api/card/:id/query."""

    edition: Literal["paid", "oss"] = "paid"
    sentinel_rows: list[list[Any]] = field(default_factory=lambda: [["latest_snapshot", SNAPSHOT]])
    failing_cards: frozenset[int] = frozenset()

    def authorised(self, request: Request) -> bool:
        return request.headers.get("x-api-key") == API_KEY or request.headers.get("x-metabase-session") == SESSION

    def __call__(self, request: Request) -> tuple[int, Any]:
        if request.path == "/api/session":
            login = request.json
            if login == {"username": "syno@example.com", "password": "pw"}:
                return 200, {"id": SESSION}
            return 401, {"errors": {"password": "did not match stored password"}}
        if not self.authorised(request):
            return 401, b"Unauthenticated"
        if request.path == "/api/cache/invalidate":
            if self.edition == "oss":
                return 402, b"Granular caching is a paid feature not currently available to your instance."
            return 200, {"count": 4, "message": "Invalidated cache for 4 question(s)."}
        if request.path.startswith("/api/card/") and request.path.endswith("/query"):
            card_id = int(request.path.split("/")[3])
            if card_id == SENTINEL:
                cols = [{"name": "name"}, {"name": "value"}]
                return 202, {"status": "completed", "data": {"rows": self.sentinel_rows, "cols": cols}}
            if card_id in self.failing_cards:
                return 202, {"status": "failed", "error": "ERROR: relation marts.x does not exist"}
            return 202, {"status": "completed", "data": {"rows": [[1]], "cols": [{"name": "n"}]}}
        return 404, b"API endpoint does not exist."


@pytest_asyncio.fixture(scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """One client for these tests (building one loads the CA bundle, which is slow); the paid-edition
    test lets `refresh_metabase` open and close its own."""
    async with httpx.AsyncClient() as shared:
        yield shared


def config(server: LocalHTTPServer, **overrides: Any) -> MetabaseConfig:
    base = MetabaseConfig(
        url=server.url + "/",
        mode="card_refresh",
        api_key=API_KEY,
        database_id=2,
        dashboard_ids=(3, 4),
        card_ids=(11, 12),
        sentinel_card_id=SENTINEL,
        retries=2,
        backoff_seconds=0.01,
        timeout_seconds=5,
    )
    return replace(base, **overrides)


def calls(server: LocalHTTPServer) -> list[tuple[str, dict[str, list[str]], Any]]:
    return [(r.path, r.query, r.json if r.body else None) for r in server.requests]


async def test_paid_edition_invalidates_caches_then_confirms_with_the_sentinel(
    http_server: Callable[..., LocalHTTPServer],
) -> None:
    server = http_server(FakeMetabase(edition="paid"))
    result = await refresh_metabase(config(server, mode="invalidate"), SNAPSHOT)

    assert calls(server) == [
        (
            "/api/cache/invalidate",
            {"include": ["overrides"], "database": ["2"], "dashboard": ["3", "4"], "question": ["11", "12"]},
            None,
        ),
        (f"/api/card/{SENTINEL}/query", {}, {}),
    ]
    assert all(r.headers["x-api-key"] == API_KEY for r in server.requests)
    assert result == MetabaseResult(
        is_ok=True,
        mode="invalidate",
        method="invalidate",
        is_confirmed=True,
        reason=f"invalidate done (1 call); sentinel card 7 shows snapshot {SNAPSHOT[:12]}",
        steps=(
            MetabaseStep("cache:database=2,dashboard=3,dashboard=4,question=11,question=12", True, 200,
                         "invalidated (4 entries)"),
            MetabaseStep("sentinel:card:7", True, 202, "shows the new snapshot"),
        ),
    )  # fmt: skip


async def test_open_source_edition_answers_402_and_the_refresh_falls_back_to_cards(
    http_server: Callable[..., LocalHTTPServer],
    client: httpx.AsyncClient,
) -> None:
    server = http_server(FakeMetabase(edition="oss"))
    result = await refresh_metabase(config(server, mode="invalidate"), SNAPSHOT, client=client)

    assert [(path, body) for path, _, body in calls(server)] == [
        ("/api/cache/invalidate", None),
        ("/api/card/11/query", {"ignore_cache": True}),
        ("/api/card/12/query", {"ignore_cache": True}),
        ("/api/card/7/query", {}),
    ]
    note = "cache invalidation is a paid Metabase feature (HTTP 402 from this edition); fell back to card refresh"
    assert result == MetabaseResult(
        is_ok=True,
        mode="invalidate",
        method="card_refresh",
        is_confirmed=True,
        reason=f"{note}; card_refresh done (2 calls); sentinel card 7 shows snapshot {SNAPSHOT[:12]}",
        steps=(
            MetabaseStep("cache:database=2,dashboard=3,dashboard=4,question=11,question=12", False, 402, note),
            MetabaseStep("card:11", True, 202, "refreshed"),
            MetabaseStep("card:12", True, 202, "refreshed"),
            MetabaseStep("sentinel:card:7", True, 202, "shows the new snapshot"),
        ),
    )


async def test_card_refresh_logs_in_with_a_session_when_there_is_no_api_key(
    http_server: Callable[..., LocalHTTPServer],
    client: httpx.AsyncClient,
) -> None:
    server = http_server(FakeMetabase(edition="oss"))
    settings = config(server, api_key=None, username="syno@example.com", password="pw")
    result = await refresh_metabase(settings, SNAPSHOT, client=client)

    assert [(path, body) for path, _, body in calls(server)] == [
        ("/api/session", {"username": "syno@example.com", "password": "pw"}),
        ("/api/card/11/query", {"ignore_cache": True}),
        ("/api/card/12/query", {"ignore_cache": True}),
        ("/api/card/7/query", {}),
    ]
    for request in server.requests[1:]:
        assert request.headers["x-metabase-session"] == SESSION
        assert "x-api-key" not in request.headers
    assert (result.is_ok, result.method, result.is_confirmed) == (True, "card_refresh", True)
    assert result.steps[0] == MetabaseStep("session", True, 200, "logged in")


async def test_a_failed_login_stops_before_any_refresh(
    http_server: Callable[..., LocalHTTPServer], client: httpx.AsyncClient
) -> None:
    server = http_server(FakeMetabase())
    settings = config(server, api_key=None, username="syno@example.com", password="wrong")
    result = await refresh_metabase(settings, SNAPSHOT, client=client)

    assert [path for path, _, _ in calls(server)] == ["/api/session"]
    assert result == MetabaseResult(
        is_ok=False,
        mode="card_refresh",
        method="card_refresh",
        is_confirmed=None,
        reason="Metabase login failed: HTTP 401",
        steps=(MetabaseStep("session", False, 401, "Metabase login failed: HTTP 401"),),
    )
    assert "wrong" not in repr(result)


async def test_a_sentinel_without_the_new_snapshot_is_not_confirmed(
    http_server: Callable[..., LocalHTTPServer],
    client: httpx.AsyncClient,
) -> None:
    server = http_server(FakeMetabase(sentinel_rows=[["latest_snapshot", "0ld" + "0" * 61]]))
    result = await refresh_metabase(config(server), SNAPSHOT, client=client)

    assert (result.is_ok, result.is_confirmed) == (False, False)
    assert result.reason == "card_refresh done but sentinel card 7 does not show the new snapshot yet"


async def test_a_card_query_failing_inside_a_202_answer_fails_the_refresh(
    http_server: Callable[..., LocalHTTPServer],
    client: httpx.AsyncClient,
) -> None:
    server = http_server(FakeMetabase(failing_cards=frozenset({12})))
    result = await refresh_metabase(config(server), SNAPSHOT, client=client)

    assert not result.is_ok
    assert result.is_confirmed is True
    assert result.reason == "card_refresh failed: card:12: query failed in Metabase"


async def test_n8n_mode_posts_the_snapshot_to_the_webhook_and_still_checks_the_sentinel(
    http_server: Callable[..., LocalHTTPServer],
    client: httpx.AsyncClient,
) -> None:
    metabase = http_server(FakeMetabase())
    n8n = http_server(lambda request: (200, {"message": "Workflow was started"}))
    settings = config(metabase, mode="n8n", n8n_webhook_url=n8n.url + "/webhook/syno-refresh-s3cr3t")
    result = await refresh_metabase(settings, SNAPSHOT, client=client, payload={"run_id": "run-1"})

    [hook] = n8n.requests
    assert hook.path == "/webhook/syno-refresh-s3cr3t"
    assert hook.headers["content-type"] == "application/json"
    assert hook.json == {
        "source": "syno",
        "snapshot_id": SNAPSHOT,
        "database_id": 2,
        "dashboard_ids": [3, 4],
        "card_ids": [11, 12],
        "run_id": "run-1",
    }
    assert [path for path, _, _ in calls(metabase)] == ["/api/card/7/query"]
    assert (result.is_ok, result.method, result.is_confirmed) == (True, "n8n", True)
    assert result.steps[0] == MetabaseStep("n8n:127.0.0.1", True, 200, "webhook accepted")
    assert "s3cr3t" not in repr(result)


async def test_n8n_webhook_of_an_inactive_workflow_says_so(
    http_server: Callable[..., LocalHTTPServer], client: httpx.AsyncClient
) -> None:
    n8n = http_server(lambda request: (404, {"message": 'The requested webhook "POST x" is not registered.'}))
    settings = MetabaseConfig(mode="n8n", n8n_webhook_url=n8n.url + "/webhook/x", retries=0)
    result = await refresh_metabase(settings, SNAPSHOT, client=client)

    assert result == MetabaseResult(
        is_ok=False,
        mode="n8n",
        method="n8n",
        is_confirmed=None,
        reason="n8n failed: n8n:127.0.0.1: HTTP 404 (webhook not registered: is the n8n workflow active?)",
        steps=(
            MetabaseStep("n8n:127.0.0.1", False, 404, "HTTP 404 (webhook not registered: is the n8n workflow active?)"),
        ),
    )


async def test_n8n_is_called_even_when_the_sentinel_cannot_be_read(
    http_server: Callable[..., LocalHTTPServer], client: httpx.AsyncClient
) -> None:
    n8n = http_server(lambda request: (200, {"message": "Workflow was started"}))
    settings = MetabaseConfig(mode="n8n", n8n_webhook_url=n8n.url + "/webhook/x", sentinel_card_id=SENTINEL)
    result = await refresh_metabase(settings, SNAPSHOT, client=client)

    assert len(n8n.requests) == 1
    assert (result.is_ok, result.is_confirmed) == (False, False)
    assert result.reason == "n8n done but sentinel card 7 could not be read (no Metabase url configured)"


async def test_an_outage_is_retried_then_reported_without_raising(
    http_server: Callable[..., LocalHTTPServer],
    client: httpx.AsyncClient,
) -> None:
    """503 twice, then the server hangs up: every attempt is made, and the result carries the reason."""

    def outage(request: Request) -> tuple[int, Any] | None:
        return (503, b"Service Unavailable") if len(server.requests) <= 2 else None

    server = http_server(outage)
    result = await refresh_metabase(
        config(server, retries=3, sentinel_card_id=None, card_ids=(11,)), SNAPSHOT, client=client
    )

    assert [r.path for r in server.requests] == ["/api/card/11/query"] * 4
    assert result == MetabaseResult(
        is_ok=False,
        mode="card_refresh",
        method="card_refresh",
        is_confirmed=None,
        reason="card_refresh failed: card:11: network error (RemoteProtocolError) after 4 attempts",
        steps=(MetabaseStep("card:11", False, None, "network error (RemoteProtocolError) after 4 attempts"),),
    )
    assert API_KEY not in repr(result)


async def test_an_unreachable_metabase_is_reported_without_raising(
    http_server: Callable[..., LocalHTTPServer],
    client: httpx.AsyncClient,
) -> None:
    server = http_server(FakeMetabase())
    server.__exit__()  # nothing listens on the port any more
    result = await refresh_metabase(config(server, retries=1), SNAPSHOT, client=client)

    assert not result.is_ok
    assert result.reason == (
        "card_refresh failed: card:11: network error (ConnectError) after 2 attempts; "
        "card:12: network error (ConnectError) after 2 attempts"
    )
    assert result.is_confirmed is False


@pytest.mark.parametrize("mode", ["invalidate", "card_refresh"])
async def test_missing_url_or_credentials_is_a_clear_failure(
    mode: Literal["invalidate", "card_refresh"], client: httpx.AsyncClient
) -> None:
    result = await refresh_metabase(MetabaseConfig(url="http://127.0.0.1:9", mode=mode), SNAPSHOT, client=client)
    assert (result.is_ok, result.reason) == (False, "no Metabase API key or username/password configured")
    result = await refresh_metabase(MetabaseConfig(mode=mode, api_key=API_KEY), SNAPSHOT, client=client)
    assert (result.is_ok, result.reason) == (False, "no Metabase url configured")


async def test_the_completed_event_gets_one_dashboard_result_and_none_when_metabase_is_off(
    http_server: Callable[..., LocalHTTPServer],
) -> None:
    server = http_server(FakeMetabase(edition="oss"))
    dashboards = await refresh_dashboards(config(server, sentinel_card_id=None), SNAPSHOT)

    assert dashboards == [
        DeliveryResult(target="metabase:card_refresh", is_ok=True, detail="card_refresh done (2 calls)")
    ]
    assert await refresh_dashboards(replace(config(server), mode="off"), SNAPSHOT) == []
    assert len(server.requests) == 2  # off made no call
