"""Local stand-ins for the activation service's edges, all on 127.0.0.1: an HTTP(S) recorder that
plays Metabase, n8n, Slack, Teams and an OpenLineage receiver, a minimal SMTP server, and the service
itself around a test's pool (`local_service`)."""

from __future__ import annotations

import json
import socketserver
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
from faststream.nats import NatsBroker
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from syno_activation.settings import ActivationService, ActivationSettings
from syno_shared.telemetry import Telemetry


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


# A responder returns (status, body) -- body is JSON-encoded unless bytes -- or None to drop the
# connection without answering.
Responder = Callable[[Request], tuple[int, Any] | None]


class LocalHTTPServer:
    """ThreadingHTTPServer on 127.0.0.1 that records every request and answers via `responder`."""

    def __init__(self, responder: Responder, *, tls: ssl.SSLContext | None = None) -> None:
        self.responder = responder
        self.requests: list[Request] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    method="POST",
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={key.lower(): value for key, value in self.headers.items()},
                    body=self.rfile.read(length),
                )
                recorder.requests.append(request)
                answer = recorder.responder(request)
                if answer is None:
                    self.close_connection = True
                    return
                status, body = answer
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> LocalHTTPServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


@dataclass
class ReceivedMail:
    auth: str | None
    mail_from: str
    recipients: list[str]
    data: bytes


@dataclass
class LocalSMTPServer:
    """Enough SMTP (EHLO, AUTH PLAIN/LOGIN accepted as is, MAIL, RCPT, DATA, QUIT) to receive a message."""

    messages: list[ReceivedMail] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        mailbox = self.messages

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def handle(self) -> None:
                self.reply("220 127.0.0.1 syno test SMTP")
                auth: str | None = None
                mail_from, recipients = "", []
                while raw := self.rfile.readline():
                    line = raw.decode().rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.wfile.write(b"250-127.0.0.1\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                    elif verb == "AUTH":
                        auth = line
                        self.reply("235 2.7.0 accepted")
                    elif verb == "MAIL":
                        mail_from = line.split(":", 1)[1]
                        self.reply("250 ok")
                    elif verb == "RCPT":
                        recipients.append(line.split(":", 1)[1])
                        self.reply("250 ok")
                    elif verb == "DATA":
                        self.reply("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            lines.append(chunk)
                        mailbox.append(ReceivedMail(auth, mail_from, recipients, b"".join(lines)))
                        self.reply("250 queued")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def local_service(
    pool: asyncpg.Pool, settings: ActivationSettings, broker: NatsBroker | None = None
) -> ActivationService:
    """The activation service's edges around a test's pool: what its handlers are given in production."""
    return ActivationService(
        name="activation",
        settings=settings,
        broker=broker or NatsBroker(),
        telemetry=Telemetry(tracer_provider=TracerProvider(), meter_provider=MeterProvider()),
        pool_holder=[pool],
    )
