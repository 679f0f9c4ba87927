"""structlog set-up: JSON off a terminal, readable on one; trace ids bound on every line."""

from __future__ import annotations

import logging
import re
import sys
from urllib.parse import urlsplit, urlunsplit

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, WrappedLogger


def _add_trace_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


class _CurrentStderr:
    """sys.stderr as it is when a line is written, not when logging was configured (a replaced or closed
    stream, as pytest's capture leaves one, must not break the next service configured in the process)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(service: str, log_format: str = "auto", level: int = logging.INFO) -> None:
    is_console = sys.stderr.isatty() if log_format == "auto" else log_format == "console"
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer() if is_console else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace_ids,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


def redact_url(url: str) -> str:
    """A URL or DSN safe to print: the password (if any) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]+)@")
_KEY_PASSWORD = re.compile(
    r"(?i)\b(?P<key>password|passwd|pwd|secret|token|api[_-]?key)(?P<sep>\s*[=:]\s*)(?P<value>[^\s,;&()]+)"
)


def redact_text(text: str) -> str:
    """Free text (an exception message) safe to send to chat or a dead letter: URL passwords and
    `password=...`-style values replaced by ***."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _KEY_PASSWORD.sub(lambda m: f"{m['key']}{m['sep']}***", text)
