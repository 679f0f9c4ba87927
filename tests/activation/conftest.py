"""Fixtures for the activation tests: local servers on 127.0.0.1 (see activation_fakes)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable, Iterator

import pytest
from activation_fakes import LocalHTTPServer, LocalSMTPServer, Responder, TLSFiles


@pytest.fixture
def http_server() -> Iterator[Callable[..., LocalHTTPServer]]:
    """Factory: `http_server(responder, tls=None)` starts a recorder, stopped after the test."""
    started: list[LocalHTTPServer] = []

    def start(responder: Responder, *, tls: ssl.SSLContext | None = None) -> LocalHTTPServer:
        server = LocalHTTPServer(responder, tls=tls).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A self-signed certificate for 127.0.0.1 (made with the openssl CLI)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl CLI is needed to make a local TLS certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return TLSFiles(cert, key)


@pytest.fixture
def smtp_server() -> Iterator[LocalSMTPServer]:
    server = LocalSMTPServer()
    yield server
    server.close()
