"""Refresh Metabase after a snapshot lands, and check that it shows the new snapshot.

Modes (`MetabaseConfig.mode`):

- ``invalidate``: ``POST /api/cache/invalidate?include=overrides&database=<id>&dashboard=<id>...
  &question=<card id>...``. Cache invalidation is a paid feature: the open-source edition answers
  HTTP 402, which is reported in the steps and followed by a card refresh.
- ``card_refresh``: ``POST /api/card/<id>/query`` with ``{"ignore_cache": true}`` for every card in
  `card_ids` (works on every edition). The endpoint streams its answer with HTTP 202 and reports a
  failed query in the body (``"status": "failed"``), so both are checked.
- ``n8n``: ``POST`` a JSON body to an n8n webhook (``<n8n>/webhook/<path>``) whose workflow does the
  refresh: ``{"source": "syno", "snapshot_id", "database_id", "dashboard_ids", "card_ids", ...}``.
- ``off``: nothing is called; the result is ok (`refresh_dashboards` reports nothing at all).

After the refresh, when `sentinel_card_id` is set, the sentinel card is read the way a dashboard reads
it (``POST /api/card/<id>/query`` with ``{}``) and its rows are searched for the snapshot id:
`is_confirmed` is True when a cell contains it, False when not (the dashboards still show an older
snapshot, or the read failed), None without a sentinel.

Auth: ``x-api-key: <key>`` (API keys, Metabase 0.49+) or a session from ``POST /api/session``
``{"username", "password"}`` -> ``{"id": <token>}`` sent as ``X-Metabase-Session``.

Connection errors, timeouts, HTTP 429 and 5xx are retried `retries` times with exponential backoff
(`backoff_seconds`, doubled each time). Nothing here raises for an HTTP or network failure: the result
says ``is_ok=False`` with a reason, so a failed refresh alerts without losing the run. No step detail or
reason contains the API key, the password, the session token or the webhook path.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import httpx

from syno_shared.events import DeliveryResult

MetabaseMode = Literal["invalidate", "card_refresh", "n8n", "off"]

HTTP_PAYMENT_REQUIRED: Final = 402
HTTP_TOO_MANY_REQUESTS: Final = 429
HTTP_SERVER_ERROR: Final = 500


@dataclass(frozen=True, slots=True)
class MetabaseConfig:
    """Where Metabase is, how to log in, and what to refresh. Plain data: build it from settings."""

    url: str = ""
    mode: MetabaseMode = "card_refresh"
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    database_id: int | None = None
    dashboard_ids: tuple[int, ...] = ()
    card_ids: tuple[int, ...] = ()
    sentinel_card_id: int | None = None
    n8n_webhook_url: str | None = field(default=None, repr=False)
    retries: int = 3
    backoff_seconds: float = 1.0
    timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class MetabaseStep:
    """One call made to Metabase or n8n. `target` names what was touched, e.g. 'card:12'."""

    target: str
    is_ok: bool
    status_code: int | None
    detail: str


@dataclass(frozen=True, slots=True)
class MetabaseResult:
    """What the refresh did. `method` is what actually ran ('card_refresh' after a 402 fallback)."""

    is_ok: bool
    mode: MetabaseMode
    method: MetabaseMode
    is_confirmed: bool | None
    reason: str
    steps: tuple[MetabaseStep, ...] = ()


@dataclass(frozen=True, slots=True)
class _Response:
    status_code: int | None
    body: Any
    error: str | None
    attempts: int

    @property
    def is_ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    def describe(self) -> str:
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        if self.status_code is None:
            return f"{self.error}{tries}"
        return f"HTTP {self.status_code}{tries}"


def _retryable(status_code: int) -> bool:
    return status_code == HTTP_TOO_MANY_REQUESTS or status_code >= HTTP_SERVER_ERROR


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


async def _call(
    client: httpx.AsyncClient,
    config: MetabaseConfig,
    url: str,
    *,
    json: Mapping[str, Any] | None = None,
    params: httpx.QueryParams | None = None,
    headers: Mapping[str, str] | None = None,
) -> _Response:
    """POST with retries; never raises for HTTP or network failures."""
    attempts = max(config.retries, 0) + 1
    last = _Response(None, None, "not attempted", 0)
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            await asyncio.sleep(config.backoff_seconds * 2 ** (attempt - 2))
        try:
            response = await client.post(url, json=json, params=params, headers=headers, timeout=config.timeout_seconds)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            last = _Response(None, None, f"network error ({type(error).__name__})", attempt)
            continue
        last = _Response(response.status_code, _json_or_none(response), None, attempt)
        if not _retryable(response.status_code):
            return last
    return last


def _endpoint(config: MetabaseConfig, path: str) -> str:
    return config.url.rstrip("/") + path


async def _auth_headers(
    client: httpx.AsyncClient, config: MetabaseConfig
) -> tuple[dict[str, str] | None, MetabaseStep | None]:
    """Headers for the Metabase API, and the session step when one was opened (None on failure)."""
    if config.api_key:
        return {"x-api-key": config.api_key}, None
    if config.username and config.password:
        response = await _call(
            client,
            config,
            _endpoint(config, "/api/session"),
            json={"username": config.username, "password": config.password},
        )
        token = response.body.get("id") if isinstance(response.body, dict) else None
        if response.is_ok and isinstance(token, str) and token:
            return {"X-Metabase-Session": token}, MetabaseStep("session", True, response.status_code, "logged in")
        return None, MetabaseStep(
            "session", False, response.status_code, f"Metabase login failed: {response.describe()}"
        )
    return None, MetabaseStep("session", False, None, "no Metabase API key or username/password configured")


def _query_failed(body: Any) -> str | None:
    """Metabase streams card queries with HTTP 202 and reports failures in the body."""
    if isinstance(body, dict) and body.get("status") == "failed":
        return "query failed in Metabase"
    return None


async def _refresh_cards(
    client: httpx.AsyncClient, config: MetabaseConfig, headers: Mapping[str, str]
) -> list[MetabaseStep]:
    steps = []
    for card_id in config.card_ids:
        response = await _call(
            client,
            config,
            _endpoint(config, f"/api/card/{card_id}/query"),
            json={"ignore_cache": True},
            headers=headers,
        )
        failure = None if response.is_ok else response.describe()
        failure = failure or _query_failed(response.body)
        steps.append(MetabaseStep(f"card:{card_id}", failure is None, response.status_code, failure or "refreshed"))
    return steps


def _invalidate_params(config: MetabaseConfig) -> tuple[tuple[str, str], ...]:
    params = [("include", "overrides")]
    if config.database_id is not None:
        params.append(("database", str(config.database_id)))
    params += [("dashboard", str(dashboard_id)) for dashboard_id in config.dashboard_ids]
    params += [("question", str(card_id)) for card_id in config.card_ids]
    return tuple(params)


@dataclass(frozen=True, slots=True)
class _Refresh:
    method: MetabaseMode
    steps: list[MetabaseStep]
    note: str = ""
    fallback: MetabaseStep | None = None


async def _invalidate(client: httpx.AsyncClient, config: MetabaseConfig, headers: Mapping[str, str]) -> _Refresh:
    """Invalidate caches; on HTTP 402 (open-source edition) fall back to refreshing the cards."""
    params = _invalidate_params(config)
    if len(params) == 1:
        return _Refresh("invalidate", [MetabaseStep("cache", False, None, "nothing to invalidate configured")])
    target = "cache:" + ",".join(f"{key}={value}" for key, value in params[1:])
    response = await _call(
        client, config, _endpoint(config, "/api/cache/invalidate"), params=httpx.QueryParams(params), headers=headers
    )
    if response.status_code == HTTP_PAYMENT_REQUIRED:
        note = "cache invalidation is a paid Metabase feature (HTTP 402 from this edition); fell back to card refresh"
        fallback = MetabaseStep(target, False, response.status_code, note)
        return _Refresh("card_refresh", await _refresh_cards(client, config, headers), note, fallback)
    if response.is_ok:
        count = response.body.get("count") if isinstance(response.body, dict) else None
        detail = "invalidated" + (f" ({count} entries)" if isinstance(count, int) and count >= 0 else "")
        return _Refresh("invalidate", [MetabaseStep(target, True, response.status_code, detail)])
    return _Refresh("invalidate", [MetabaseStep(target, False, response.status_code, response.describe())])


async def _call_n8n(
    client: httpx.AsyncClient,
    config: MetabaseConfig,
    snapshot_id: str,
    payload: Mapping[str, Any] | None,
) -> MetabaseStep:
    if not config.n8n_webhook_url:
        return MetabaseStep("n8n", False, None, "no n8n_webhook_url configured")
    target = f"n8n:{urlsplit(config.n8n_webhook_url).hostname or '?'}"
    body = {
        "source": "syno",
        "snapshot_id": snapshot_id,
        "database_id": config.database_id,
        "dashboard_ids": list(config.dashboard_ids),
        "card_ids": list(config.card_ids),
        **(payload or {}),
    }
    response = await _call(client, config, config.n8n_webhook_url, json=body)
    if response.is_ok:
        return MetabaseStep(target, True, response.status_code, "webhook accepted")
    hint = " (webhook not registered: is the n8n workflow active?)" if response.status_code == 404 else ""
    return MetabaseStep(target, False, response.status_code, response.describe() + hint)


def _contains(value: Any, needle: str) -> bool:
    if isinstance(value, list | tuple):
        return any(_contains(item, needle) for item in value)
    return value is not None and needle in str(value)


async def _read_sentinel(
    client: httpx.AsyncClient, config: MetabaseConfig, headers: Mapping[str, str], card_id: int, snapshot_id: str
) -> tuple[bool, MetabaseStep]:
    response = await _call(client, config, _endpoint(config, f"/api/card/{card_id}/query"), json={}, headers=headers)
    target = f"sentinel:card:{card_id}"
    failure = None if response.is_ok else response.describe()
    failure = failure or _query_failed(response.body)
    if failure:
        return False, MetabaseStep(target, False, response.status_code, f"sentinel read failed: {failure}")
    data = response.body.get("data") if isinstance(response.body, dict) else None
    rows = data.get("rows") if isinstance(data, dict) else None
    if _contains(rows, snapshot_id):
        return True, MetabaseStep(target, True, response.status_code, "shows the new snapshot")
    return False, MetabaseStep(target, False, response.status_code, "does not show the new snapshot yet")


async def _refresh(
    client: httpx.AsyncClient,
    config: MetabaseConfig,
    snapshot_id: str,
    payload: Mapping[str, Any] | None,
) -> MetabaseResult:
    steps: list[MetabaseStep] = []
    headers: dict[str, str] | None = None
    session_failure = ""
    if config.mode != "n8n" or config.sentinel_card_id is not None:
        if config.url:
            headers, session_step = await _auth_headers(client, config)
        else:
            session_step = MetabaseStep("session", False, None, "no Metabase url configured")
        if session_step is not None:
            steps.append(session_step)
            session_failure = "" if session_step.is_ok else session_step.detail
        if headers is None and config.mode != "n8n":
            return MetabaseResult(False, config.mode, config.mode, None, session_failure, tuple(steps))

    if config.mode == "n8n":
        refresh = _Refresh("n8n", [await _call_n8n(client, config, snapshot_id, payload)])
    elif headers is None:  # unreachable: the API modes returned above without headers
        refresh = _Refresh(config.mode, [])
    elif config.mode == "invalidate":
        refresh = await _invalidate(client, config, headers)
    else:
        refresh = _Refresh("card_refresh", await _refresh_cards(client, config, headers))
    if not refresh.steps:
        refresh.steps.append(MetabaseStep("card", False, None, "no card_ids to refresh"))
    if refresh.fallback is not None:
        steps.append(refresh.fallback)
    steps += refresh.steps
    is_refreshed = all(step.is_ok for step in refresh.steps)

    is_confirmed: bool | None = None
    sentinel_detail = ""
    if config.sentinel_card_id is not None:
        if headers is None:
            is_confirmed, sentinel_detail = False, f"could not be read ({session_failure})"
        else:
            is_confirmed, sentinel_step = await _read_sentinel(
                client, config, headers, config.sentinel_card_id, snapshot_id
            )
            steps.append(sentinel_step)
            sentinel_detail = sentinel_step.detail

    calls = len(refresh.steps)
    if not is_refreshed:
        failed = "; ".join(f"{step.target}: {step.detail}" for step in refresh.steps if not step.is_ok)
        reason = f"{refresh.method} failed: {failed}"
    elif is_confirmed is False:
        reason = f"{refresh.method} done but sentinel card {config.sentinel_card_id} {sentinel_detail}"
    else:
        reason = f"{refresh.method} done ({calls} {'call' if calls == 1 else 'calls'})"
        if is_confirmed:
            reason += f"; sentinel card {config.sentinel_card_id} shows snapshot {snapshot_id[:12]}"
    if refresh.note:
        reason = f"{refresh.note}; {reason}"
    is_ok = is_refreshed and is_confirmed is not False
    return MetabaseResult(is_ok, config.mode, refresh.method, is_confirmed, reason, tuple(steps))


async def refresh_metabase(
    config: MetabaseConfig,
    snapshot_id: str,
    *,
    client: httpx.AsyncClient | None = None,
    payload: Mapping[str, Any] | None = None,
) -> MetabaseResult:
    """Refresh Metabase for `snapshot_id` as `config.mode` says, then confirm with the sentinel card.

    `client` lets the caller share a connection pool (it is not closed here); `payload` adds fields to
    the n8n webhook body (e.g. run_id). Never raises for HTTP or network failures.
    """
    if config.mode == "off":
        return MetabaseResult(True, "off", "off", None, "Metabase refresh is off")
    if client is not None:
        return await _refresh(client, config, snapshot_id, payload)
    async with httpx.AsyncClient(timeout=config.timeout_seconds) as own_client:
        return await _refresh(own_client, config, snapshot_id, payload)


def channel_id(config: MetabaseConfig) -> str:
    """The refresh's channel id in the outbox: 'metabase:' and a hash of the address called (the n8n webhook
    in mode n8n, whose path is a secret; the Metabase URL otherwise)."""
    address = (config.n8n_webhook_url or "") if config.mode == "n8n" else config.url
    return f"metabase:{hashlib.sha256(address.encode()).hexdigest()[:16]}"


async def refresh_dashboards(config: MetabaseConfig, snapshot_id: str) -> list[DeliveryResult]:
    """The refresh as the activation.completed event reports it: one result, or none when the mode is off."""
    if config.mode == "off":
        return []
    result = await refresh_metabase(config, snapshot_id)
    return [DeliveryResult(target=f"metabase:{result.method}", is_ok=result.is_ok, detail=result.reason)]
