"""Run summaries and failure alerts to Slack, Teams, e-mail or a JSON webhook, through apprise.

Each URL is sent on its own, so every channel gets its own `ChannelResult`. Supported URLs (apprise 2.3):

- Slack: ``slack://TokenA/TokenB/TokenC`` or the native ``https://hooks.slack.com/services/...``.
- Teams: ``workflows://...`` or the Power Automate / Logic Apps URL (``msteams://`` is no longer
  recognised by apprise and is reported as such).
- E-mail: ``mailto://`` / ``mailtos://user:password@host?to=...&from=...``.
- Generic JSON webhook: ``json://host:port/path`` (``jsons://`` for TLS).

A failed delivery never raises: apprise returns an ``AppriseResult`` (not a bool), whose status is
checked here. `ChannelResult.detail` names the channel by scheme and host only; tokens, passwords,
paths and query strings of the URL never appear in it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Final, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise
from apprise.plugins import N_MGR

from syno_activation.narratives import quarter_label

NOTIFY_TIMEOUT_SECONDS: Final = 60.0
_HOSTNAME: Final = re.compile(r"^(localhost|[0-9.]+|\[[0-9a-f:]+\]|[a-z0-9-]+(\.[a-z0-9-]+)+)$", re.IGNORECASE)
_MIN_SECRET_LENGTH: Final = 3


@dataclass(frozen=True, slots=True)
class ChannelResult:
    """Outcome for one notification URL. `channel` is its scheme ('slack', 'workflows', 'mailto')."""

    channel: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True, slots=True)
class QualityHealth:
    """dbt and quality-gate health for the run."""

    tests_passed: int
    tests_warned: int
    tests_failed: int
    gates_failed: tuple[str, ...] = ()
    gates_warned: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CohortMetrics:
    """Holdout accuracy of one forecast cohort; `is_threshold_met` False flags it."""

    cohort: str
    series_count: int
    smape: float | None
    baseline_smape: float | None
    threshold_smape: float | None
    is_threshold_met: bool


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Everything a run summary says. Percentages (sMAPE) are in percent, e.g. 12.5."""

    run_id: str
    snapshot_id: str
    file_name: str
    rows_loaded: int
    rows_delta: int | None = None
    size_bytes: int | None = None
    size_delta_bytes: int | None = None
    quality: QualityHealth | None = None
    target_quarter: date | None = None
    cohorts: tuple[CohortMetrics, ...] = ()
    headlines: tuple[str, ...] = ()
    c2_highlights: tuple[str, ...] = ()
    storylines: tuple[str, ...] = ()
    trace_url: str | None = None
    dashboards: tuple[Link, ...] = ()


class FailureLike(Protocol):
    """What an alert needs; `syno_shared.events.PipelineFailed` fits as it is."""

    @property
    def stage(self) -> str: ...
    @property
    def reason_code(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def snapshot_id(self) -> str: ...
    @property
    def is_retryable(self) -> bool: ...
    @property
    def input_reference(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Message:
    title: str
    body: str
    notify_type: str = field(default=apprise.NotifyType.INFO)


def _signed(value: int) -> str:
    return f"{value:+,d}"


def _megabytes(value: int) -> str:
    return f"{value / 1_000_000:.1f} MB"


def _links(trace_url: str | None, dashboards: Sequence[Link]) -> str:
    links = ([Link("Trace in Grafana", trace_url)] if trace_url else []) + list(dashboards)
    return " · ".join(f"[{link.label}]({link.url})" for link in links)


def _quality_line(quality: QualityHealth) -> str:
    line = (
        f"**Quality**: dbt tests {quality.tests_passed} passed, {quality.tests_warned} warned, "
        f"{quality.tests_failed} failed"
    )
    if quality.gates_failed:
        line += "; gates failed: " + ", ".join(quality.gates_failed)
    if quality.gates_warned:
        line += "; gates warned: " + ", ".join(quality.gates_warned)
    if not quality.gates_failed and not quality.gates_warned:
        line += "; all quality gates passed"
    return line


def _cohort_line(cohort: CohortMetrics) -> str:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}%"

    line = (
        f"- {cohort.cohort}: {cohort.series_count} series, sMAPE {pct(cohort.smape)} "
        f"(seasonal naive {pct(cohort.baseline_smape)})"
    )
    if cohort.is_threshold_met:
        return line
    return line + f" **FLAGGED**: above the {pct(cohort.threshold_smape)} limit"


def summary_message(summary: RunSummary) -> Message:
    """Title and markdown body of a run summary (pure; `send_summary` sends it)."""
    flagged = [cohort.cohort for cohort in summary.cohorts if not cohort.is_threshold_met]
    target = quarter_label(summary.target_quarter) if summary.target_quarter else "the next quarter"
    title = f"syno: forecasts for {target} from {summary.file_name}"
    if flagged:
        title += f" ({len(flagged)} cohort{'s' if len(flagged) > 1 else ''} flagged)"

    ingestion = f"**Ingestion**: {summary.rows_loaded:,d} rows"
    if summary.rows_delta is not None:
        ingestion += f" ({_signed(summary.rows_delta)} vs previous snapshot)"
    if summary.size_bytes is not None:
        ingestion += f", file {_megabytes(summary.size_bytes)}"
        if summary.size_delta_bytes is not None:
            ingestion += f" ({'+' if summary.size_delta_bytes >= 0 else ''}{_megabytes(summary.size_delta_bytes)})"
    lines = [ingestion + ".", f"Snapshot `{summary.snapshot_id[:12]}`, run `{summary.run_id}`."]
    if summary.quality is not None:
        lines += ["", _quality_line(summary.quality) + "."]
    if summary.cohorts or summary.headlines:
        lines += ["", f"**Forecast ({target})**:"]
        lines += [f"- {headline}" for headline in summary.headlines]
        lines += [_cohort_line(cohort) for cohort in summary.cohorts]
    for heading, items in (("C2 highlights", summary.c2_highlights), ("Storylines", summary.storylines)):
        if items:
            lines += ["", f"**{heading}**:", *[f"- {item}" for item in items]]
    links = _links(summary.trace_url, summary.dashboards)
    if links:
        lines += ["", links]
    notify_type = apprise.NotifyType.WARNING if flagged else apprise.NotifyType.SUCCESS
    return Message(title, "\n".join(lines), notify_type)


def alert_message(failure: FailureLike, *, trace_url: str | None = None) -> Message:
    """Title and markdown body of a failure alert (pure; `send_alert` sends it)."""
    title = f"syno: {failure.stage} failed ({failure.reason_code})"
    lines = [
        failure.message,
        "",
        f"- Stage: {failure.stage}",
        f"- Reason: `{failure.reason_code}`",
        f"- Retryable: {'yes' if failure.is_retryable else 'no'}",
        f"- Input: `{failure.input_reference}`",
        f"- Snapshot `{failure.snapshot_id[:12]}`, run `{failure.run_id}`",
    ]
    if trace_url:
        lines += ["", _links(trace_url, ())]
    return Message(title, "\n".join(lines), apprise.NotifyType.FAILURE)


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


def _send_one(url: str, message: Message) -> ChannelResult:
    instance, plugin = _load_apprise(url)
    channel = _channel(url, plugin)
    where = redact_url(url)
    if plugin is None:
        hint = " (use workflows:// or the Power Automate URL for Teams)" if channel == "msteams" else ""
        return ChannelResult(channel, False, f"apprise does not recognise {where} as a notification URL{hint}")
    result = instance.notify(
        body=message.body,
        title=message.title,
        notify_type=message.notify_type,
        body_format=apprise.NotifyFormat.MARKDOWN,
        timeout=NOTIFY_TIMEOUT_SECONDS,
    )
    if result.status == apprise.AppriseResultStatus.SUCCESS:
        return ChannelResult(channel, True, f"delivered to {where}")
    problems = [entry.message for entry in result.logs() if entry.level in ("WARNING", "ERROR", "CRITICAL")]
    why = _scrub(problems[-1], url) if problems else "no detail from apprise"
    return ChannelResult(channel, False, f"{result.status.name.lower()} sending to {where}: {why}")


def send_summary(urls: Sequence[str], summary: RunSummary) -> list[ChannelResult]:
    """Send the run summary to every URL; one result per URL, in order. Never raises for delivery."""
    message = summary_message(summary)
    return [_send_one(url, message) for url in urls]


def send_alert(urls: Sequence[str], failure: FailureLike, *, trace_url: str | None = None) -> list[ChannelResult]:
    """Send a failure alert to every URL; one result per URL, in order. Never raises for delivery."""
    message = alert_message(failure, trace_url=trace_url)
    return [_send_one(url, message) for url in urls]


async def send_summary_async(urls: Sequence[str], summary: RunSummary) -> list[ChannelResult]:
    """`send_summary` in a worker thread, for async handlers."""
    return await asyncio.to_thread(send_summary, urls, summary)


async def send_alert_async(
    urls: Sequence[str], failure: FailureLike, *, trace_url: str | None = None
) -> list[ChannelResult]:
    """`send_alert` in a worker thread, for async handlers."""
    return await asyncio.to_thread(send_alert, urls, failure, trace_url=trace_url)
