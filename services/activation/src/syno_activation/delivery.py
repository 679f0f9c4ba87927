"""Messages (run summaries, failure alerts; see `rendering`) sent to Slack, Teams, e-mail or a JSON webhook,
through apprise.

Each URL is sent on its own, so every channel gets its own `DeliveryResult` (target: the channel's scheme).
Supported URLs (apprise 2.3):

- Slack: ``slack://TokenA/TokenB/TokenC`` or the native ``https://hooks.slack.com/services/...``.
- Teams: ``workflows://...`` or the Power Automate / Logic Apps URL (``msteams://`` is no longer
  recognised by apprise and is reported as such).
- E-mail: ``mailto://`` / ``mailtos://user:password@host?to=...&from=...``.
- Generic JSON webhook: ``json://host:port/path`` (``jsons://`` for TLS).

A failed delivery never raises: apprise returns an ``AppriseResult`` (not a bool), whose status is
checked here. A result's `detail` names the channel by scheme and host only; tokens, passwords,
paths and query strings of the URL never appear in it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import threading
import warnings
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from apprise.plugins import N_MGR

from syno_activation.rendering import Message
from syno_shared.events import DeliveryResult

NOTIFY_TIMEOUT_SECONDS: Final = 60.0
_HOSTNAME: Final = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-f:]+\]|[a-z0-9-]+(\.[a-z0-9-]+)+)$", re.IGNORECASE)
_MIN_SECRET_LENGTH: Final = 3


def _channel(url: str, plugin: object | None) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https") and plugin is not None:
        protocols = getattr(plugin, "secure_protocol", None) or getattr(plugin, "protocol", None)
        names = [protocols] if isinstance(protocols, str) else list(protocols or [])
        if names:
            return str(names[-1])
    return scheme or "unknown"


def redact_url(url: str) -> str:
    """Scheme and host only; a 'host' that is really a token (slack://TokenA/...) is dropped too."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" if host and _HOSTNAME.match(host) else f"{parts.scheme}://"


def channel_id(url: str) -> str:
    """The channel's id in the outbox: its scheme and a hash of the whole URL, so no part of the URL can be read
    from it and two webhooks on one host (two Slack channels) stay two channels."""
    scheme = urlsplit(url).scheme.lower() or "unknown"
    return f"{scheme}:{hashlib.sha256(url.encode()).hexdigest()[:16]}"


def _secrets(url: str) -> list[str]:
    """Every piece of `url` that could be a secret, longest first."""
    parts = urlsplit(url)
    pieces = [parts.username or "", parts.password or "", parts.hostname or ""]
    pieces += [unquote(segment) for segment in parts.path.split("/")]
    pieces += [value for _, value in parse_qsl(parts.query)]
    pieces += [parts.fragment]
    public = {redact_url(url).partition("://")[2]}
    keep = {piece for piece in pieces if len(piece) >= _MIN_SECRET_LENGTH and piece not in public}
    return sorted(keep, key=len, reverse=True)


def _scrub(text: str, url: str) -> str:
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


class _RedactUnparseableUrls(logging.Filter):
    """apprise logs a URL it cannot parse in full (token included); keep only its scheme and host."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for prefix in ("Unparseable URL ", "Unsupported URL: "):
            if message.startswith(prefix):
                record.msg, record.args = prefix + redact_url(message.removeprefix(prefix)), None
        return True


_plugins_lock = threading.Lock()
_plugins_loaded = False


def _load_plugins() -> None:
    """Load apprise's plugins once.

    apprise loads them on first use; its PGP helper imports the stdlib `imghdr`, deprecated in
    Python 3.11, which warns at import. The warning concerns apprise's internals, not our use of it.
    """
    global _plugins_loaded
    with _plugins_lock:
        if _plugins_loaded:
            return
        logging.getLogger(apprise.LOGGER_NAME).addFilter(_RedactUnparseableUrls())
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="'imghdr' is deprecated", category=DeprecationWarning)
            apprise.Apprise.instantiate("json://localhost")
        _plugins_loaded = True


def _is_known(url: str) -> bool:
    """Whether apprise has a plugin for the scheme (https URLs are checked by the plugins themselves)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme in ("http", "https") or scheme in N_MGR


def _load_apprise(url: str) -> tuple[apprise.Apprise, object | None]:
    _load_plugins()
    instance = apprise.Apprise(asset=apprise.AppriseAsset(app_id="syno", app_desc="syno sell-out pipeline"))
    plugin = apprise.Apprise.instantiate(url, asset=instance.asset) if _is_known(url) else None
    if plugin is not None:
        instance.add(plugin)
    return instance, plugin


def _send_one(url: str, message: Message) -> DeliveryResult:
    instance, plugin = _load_apprise(url)
    channel = _channel(url, plugin)
    where = redact_url(url)
    if plugin is None:
        hint = " (use workflows:// or the Power Automate URL for Teams)" if channel == "msteams" else ""
        return DeliveryResult(
            target=channel,
            is_ok=False,
            detail=f"apprise does not recognise {where} as a notification URL{hint}",
        )
    result = instance.notify(
        body=message.body,
        title=message.title,
        notify_type=apprise.NotifyType(message.severity),
        body_format=apprise.NotifyFormat.MARKDOWN,
        timeout=NOTIFY_TIMEOUT_SECONDS,
    )
    if result.status == apprise.AppriseResultStatus.SUCCESS:
        return DeliveryResult(target=channel, is_ok=True, detail=f"delivered to {where}")
    problems = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
    why = _scrub(problems[-1], url) if problems else "no detail from apprise"
    detail = f"{result.status.name.lower()} sending to {where}: {why}"
    return DeliveryResult(target=channel, is_ok=False, detail=detail)


def send_message(urls: Sequence[str], message: Message) -> list[DeliveryResult]:
    """Send the message to every URL; one result per URL, in order. Never raises for delivery."""
    return [_send_one(url, message) for url in urls]


async def send_message_async(urls: Sequence[str], message: Message) -> list[DeliveryResult]:
    """`send_message` in a worker thread, for async handlers."""
    return await asyncio.to_thread(send_message, urls, message)
