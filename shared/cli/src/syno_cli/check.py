"""`syno check`: a dry run of the whole deployment that writes nothing.

Each check logs in the way a service does (SYNO_NATS_URL with SYNO_NATS_USER / SYNO_NATS_PASSWORD, SYNO_PG_DSN)
and only reads: the settings of every installed service, NATS and its streams and durable consumers, PostgreSQL
(in a read-only session) and its pending migrations, dbt (`debug` and `parse` into a temporary target folder),
the mapping tables (parsed, their content hashes printed), the share's folders, and the outside targets
(Metabase, n8n, the notification hosts, the OTLP collector, the lineage catalog): a TCP connection to each host,
no request sent. One line per check, ok or FAIL with the setting to fix; a check whose prerequisite failed is
skipped rather than failed, so one wrong setting gives one failing line.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
import psycopg
import typer
from nats.aio.client import DEFAULT_INBOX_PREFIX
from nats.aio.client import Client as NatsClient
from pydantic import BaseModel, SecretStr, ValidationError
from rich.console import Console

from syno_shared import access, bus, deadletter, migrate
from syno_shared.fingerprint import mapping_versions
from syno_shared.logging import redact_url
from syno_shared.settings import Settings

Status = Literal["ok", "FAIL", "skip"]
CHECKS: Final = ("settings", "nats", "streams", "consumers", "postgres", "migrations", "dbt", "mapping", "share",
                 "targets")  # fmt: skip
TIMEOUT_SECONDS: Final = 5.0
# Where an apprise scheme sends: a fixed host, or the URL's own host (None) with this port.
APPRISE_HOSTS: Final[dict[str, tuple[str | None, int]]] = {
    "slack": ("hooks.slack.com", 443),
    "discord": ("discord.com", 443),
    "workflows": (None, 443),
    "json": (None, 80),
    "jsons": (None, 443),
    "form": (None, 80),
    "forms": (None, 443),
    "xml": (None, 80),
    "xmls": (None, 443),
    "http": (None, 80),
    "https": (None, 443),
    "mailto": (None, 25),
    "mailtos": (None, 587),
}

err = Console(stderr=True)


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, the result, and the setting to fix when it failed."""

    check: str
    status: Status
    detail: str
    setting: str = ""

    def line(self) -> str:
        fix = f" -> fix {self.setting}" if self.status == "FAIL" and self.setting else ""
        return f"{self.status:<4} {self.check:<10} {self.detail}{fix}"


def _variable(location: tuple[int | str, ...]) -> str:
    return "SYNO_" + "__".join(str(part).upper() for part in location)


# --- settings ----------------------------------------------------------------------------------------------


class SettingsInvalid(Exception):
    """The settings every process shares are invalid: nothing else can be checked."""

    def __init__(self, checks: list[Check]) -> None:
        super().__init__(checks)
        self.checks = checks


def service_settings() -> tuple[Settings, dict[str, BaseModel], list[Check]]:
    """The common settings and each installed service's (as its process reads them), with a check each."""
    checks: list[Check] = []
    services: dict[str, BaseModel] = {}
    try:
        common = Settings()
    except ValidationError as error:
        problems = [Check("settings", "FAIL", f"common: {p['msg']}", _variable(p["loc"])) for p in error.errors()]
        raise SettingsInvalid(problems) from None
    for service in access.SERVICES:
        try:
            module = importlib.import_module(f"syno_{service}.settings")
        except ImportError:
            continue  # not installed in this image
        settings_class = getattr(module, f"{service.capitalize()}Settings")
        try:
            services[service] = settings_class()
        except ValidationError as error:
            for problem in error.errors():
                checks.append(Check("settings", "FAIL", f"{service}: {problem['msg']}", _variable(problem["loc"])))
    if not checks:
        names = ", ".join(services) or "no service installed"
        checks.append(Check("settings", "ok", f"common and service settings valid ({names})"))
    return common, services, checks


# --- NATS ----------------------------------------------------------------------------------------------------


async def _ignore(_: Exception) -> None:
    return None


async def nats_checks(settings: Settings) -> list[Check]:
    """Connect as the configured user, then read the streams and the durable consumers (never create them)."""
    if settings.nats_url is None:
        return [Check("nats", "FAIL", "no NATS server configured", "SYNO_NATS_URL")]
    user = settings.nats_user
    password = settings.nats_password.get_secret_value() if settings.nats_password is not None else None
    where = f"{redact_url(settings.nats_url)} as {user or '(the URL user)'}"
    login: dict[str, Any] = {} if user is None else {"user": user, "password": password or ""}
    try:
        connection = await nats.connect(
            settings.nats_url,
            **login,
            inbox_prefix=bus.inbox_prefix(user) if user else DEFAULT_INBOX_PREFIX,
            connect_timeout=TIMEOUT_SECONDS,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=_ignore,
        )
    except (nats.errors.Error, OSError, TimeoutError) as error:
        text = str(error).lower()
        if "authorization" in text or "authentication" in text:
            setting = "SYNO_NATS_USER / SYNO_NATS_PASSWORD"
            return [Check("nats", "FAIL", f"{where}: authorization refused", setting)]
        return [Check("nats", "FAIL", f"{where}: unreachable ({type(error).__name__})", "SYNO_NATS_URL")]
    checks = [Check("nats", "ok", f"connected to {where}")]
    try:
        checks += await _streams_and_consumers(connection, settings.stream_name, user)
    finally:
        await connection.close()
    return checks


async def _streams_and_consumers(connection: NatsClient, stream_name: str, user: str | None) -> list[Check]:
    js = connection.jetstream(timeout=TIMEOUT_SECONDS)
    checks: list[Check] = []
    streams = [stream_name, *(config.name for config in deadletter.stream_configs(stream_name) if config.name)]
    present = set()
    for name in streams:
        try:
            info = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            fix = "SYNO_STREAM_NAME, or run the deployment's setup (python -m syno_shared.provision) as the operator"
            checks.append(Check("streams", "FAIL", f"stream {name} missing", fix))
            continue
        except nats.errors.TimeoutError:  # a refused request is never answered
            checks.append(Check("streams", "FAIL", f"stream {name}: no answer (not allowed?)", "SYNO_NATS_USER"))
            continue
        present.add(name)
        checks.append(Check("streams", "ok", f"stream {name}: {info.state.messages} messages"))
    services = [user] if user in access.SERVICES else list(access.SERVICES)
    for service in services:
        for consumer in access.service_bus(service, stream_name).consumes:
            label = f"{service}: {consumer.durable} on {consumer.stream}"
            if consumer.stream == stream_name and stream_name not in present:
                checks.append(Check("consumers", "skip", f"{label} (its stream is missing)"))
                continue
            try:
                info = await js.consumer_info(consumer.stream, consumer.durable)
            except nats.js.errors.NotFoundError:
                fix = f"start the {service} service (it creates its consumer)"
                checks.append(Check("consumers", "FAIL", f"{label} missing", fix))
                continue
            except nats.errors.TimeoutError:
                checks.append(Check("consumers", "FAIL", f"{label}: no answer (not allowed?)", "SYNO_NATS_USER"))
                continue
            waiting = (
                f"{info.num_pending} pending, {info.num_ack_pending} unacknowledged, {info.num_redelivered} redelivered"
            )
            checks.append(Check("consumers", "ok", f"{label}: {waiting}"))
    return checks


# --- PostgreSQL and dbt -------------------------------------------------------------------------------------


def postgres_checks(settings: Settings) -> list[Check]:
    """Log in with SYNO_PG_DSN in a read-only session; list the migrations not applied yet (when visible)."""
    if settings.pg_dsn is None:
        return [Check("postgres", "FAIL", "no PostgreSQL configured", "SYNO_PG_DSN")]
    where = redact_url(settings.pg_dsn)
    try:
        connection = psycopg.connect(
            settings.pg_dsn, connect_timeout=int(TIMEOUT_SECONDS), options="-c default_transaction_read_only=on"
        )
    except psycopg.OperationalError as error:
        text = str(error)
        if "password authentication failed" in text or "no password supplied" in text:
            return [Check("postgres", "FAIL", f"{where}: password refused", "SYNO_PG_DSN (its user and password)")]
        if "does not exist" in text:
            return [Check("postgres", "FAIL", f"{where}: {text.splitlines()[-1].strip()}", "SYNO_PG_DSN")]
        return [Check("postgres", "FAIL", f"{where}: unreachable", "SYNO_PG_DSN")]
    with connection:
        who = connection.execute("select current_user, current_setting('server_version')").fetchone()
        role, version = who or ("", "")
        checks = [Check("postgres", "ok", f"connected to {where} as {role} (PostgreSQL {version}, read-only session)")]
        checks.append(_pending_migrations(connection))
    return checks


def _pending_migrations(connection: psycopg.Connection[Any]) -> Check:
    from yoyo import read_migrations  # type: ignore[import-untyped]  # yoyo ships no type information

    known = [m.id for m in read_migrations(*(source.directory for source in migrate.installed_sources()))]
    try:
        applied = {row[0] for row in connection.execute("select migration_id from _yoyo_migration")}
    except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedTable) as error:
        connection.rollback()
        reason = "no migration applied yet" if isinstance(error, psycopg.errors.UndefinedTable) else "not visible"
        if reason == "not visible":
            return Check("migrations", "skip", "the migration history is not visible to this role")
        return Check("migrations", "FAIL", reason, "run `syno migrate` (or the deployment's setup) as the owner")
    pending = [migration_id for migration_id in known if migration_id not in applied]
    if pending:
        fix = "run `syno migrate` (or the deployment's setup) as the owner"
        return Check("migrations", "FAIL", f"{len(pending)} pending: {', '.join(pending)}", fix)
    return Check("migrations", "ok", f"{len(known)} applied, none pending")


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_checks(settings: Settings, services: Mapping[str, BaseModel]) -> list[Check]:
    """`dbt debug` (profile and connection) and `dbt parse`, every artifact and log in a temporary folder."""
    try:
        from syno_transform.dbt_runner import dbt_environment
        from syno_transform.main import REPO_DBT_DIR
    except ImportError:
        return [Check("dbt", "skip", "the transform is not installed here")]
    options = getattr(services.get("transform"), "transform", None)
    project = getattr(options, "dbt_project_dir", None) or REPO_DBT_DIR
    variables = options.dbt_variables() if options is not None else {}
    if not (Path(project) / "dbt_project.yml").is_file():
        return [Check("dbt", "FAIL", f"no dbt project in {project}", "SYNO_TRANSFORM__DBT_PROJECT_DIR")]
    assert settings.pg_dsn is not None  # the caller checked PostgreSQL first
    from dbt.cli.main import dbtRunner  # seconds to import: only when asked

    checks = []
    with tempfile.TemporaryDirectory(prefix="syno-check-dbt-") as target:
        # Artifacts and logs in the temporary folder (`debug` takes no --target-path: the variables serve both).
        quiet = {"DBT_TARGET_PATH": target, "DBT_LOG_PATH": target, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        common = ["--project-dir", str(project), "--profiles-dir", str(project), "--quiet", "--no-use-colors"]
        runner = dbtRunner()
        with _environment({**dbt_environment(settings.pg_dsn), **quiet}):
            for command, arguments in (("debug", []), ("parse", ["--vars", json.dumps(variables, sort_keys=True)])):
                result = runner.invoke([command, *arguments, *common])
                if result.success:
                    checks.append(Check("dbt", "ok", f"dbt {command} in {project}"))
                    continue
                reason = redact_url(str(result.exception)) if result.exception else "see `dbt debug` output"
                setting = "SYNO_PG_DSN" if command == "debug" else "SYNO_TRANSFORM__DBT_PROJECT_DIR"
                checks.append(Check("dbt", "FAIL", f"dbt {command} failed: {reason[:200]}", setting))
    return checks


# --- files ---------------------------------------------------------------------------------------------------


def mapping_checks(settings: Settings) -> list[Check]:
    """Every mapping table present and parsed as the transform parses them; their content hashes."""
    folder = settings.mapping_table_dir
    setting = "SYNO_MAPPING_DIR (or SYNO_DATA_DIR)"
    if not folder.is_dir():
        return [Check("mapping", "FAIL", f"no mapping folder {folder}", setting)]
    try:
        from syno_transform.reference import MAPPING_FILES, load_reference
    except ImportError:
        expected: tuple[str, ...] = ()
    else:
        expected = MAPPING_FILES
        missing = [name for name in expected if not (folder / name).is_file()]
        if missing:
            return [Check("mapping", "FAIL", f"{folder} lacks {', '.join(missing)}", setting)]
        try:
            load_reference(folder)
        except Exception as error:  # any parse error is the file's: say which, keep going with the other checks
            return [Check("mapping", "FAIL", f"{folder}: {type(error).__name__}: {str(error)[:200]}", setting)]
    versions = mapping_versions(folder)
    if not versions:
        return [Check("mapping", "FAIL", f"no CSV in {folder}", setting)]
    return [Check("mapping", "ok", f"{name} sha256 {digest[:16]}") for name, digest in versions.items()]


def share_checks(settings: Settings) -> list[Check]:
    """The share and the folders files move to: present and writable by this process (nothing written)."""
    checks = []
    for folder in (settings.raw_dir, settings.processed_dir, settings.quarantine_dir):
        if not folder.is_dir():
            checks.append(Check("share", "FAIL", f"no folder {folder}", "SYNO_DATA_DIR"))
        elif not os.access(folder, os.W_OK | os.X_OK):
            checks.append(Check("share", "FAIL", f"{folder} not writable by this user", "SYNO_DATA_DIR"))
        else:
            checks.append(Check("share", "ok", f"{folder} writable"))
    return checks


# --- outside targets -----------------------------------------------------------------------------------------


def _secret(value: SecretStr | str | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def outside_targets(settings: Settings, services: Mapping[str, BaseModel]) -> list[tuple[str, str, str | None, int]]:
    """(label, setting, host, port) of every outside system configured; labels never hold a secret."""
    targets: list[tuple[str, str, str | None, int]] = []

    def add(label: str, setting: str, url: str | None, default_port: int | None = None) -> None:
        if not url:
            return
        parts = urlsplit(url)
        fixed_host, scheme_port = APPRISE_HOSTS.get(parts.scheme, (None, 443 if parts.scheme.endswith("s") else 80))
        host = fixed_host or parts.hostname
        try:
            port = parts.port if fixed_host is None and parts.port else (default_port or scheme_port)
        except ValueError:
            port = default_port or scheme_port
        targets.append((f"{label} {parts.scheme}://{host}:{port}", setting, host, port))

    add("OTLP collector", "SYNO_OTLP_ENDPOINT", settings.otlp_endpoint)
    options = getattr(services.get("activation"), "activation", None)
    if options is not None:
        metabase = options.metabase
        if metabase.mode in ("invalidate", "card_refresh") or metabase.sentinel_card_id is not None:
            add("Metabase", "SYNO_ACTIVATION__METABASE__URL", metabase.url)
        if metabase.mode == "n8n":
            add("n8n", "SYNO_ACTIVATION__METABASE__N8N_WEBHOOK_URL", _secret(metabase.n8n_webhook_url))
        if options.lineage.transport == "http":
            add("lineage catalog", "SYNO_ACTIVATION__LINEAGE__URL", options.lineage.url)
        for name in type(options).model_fields:
            if name.endswith("_urls"):
                for number, url in enumerate(getattr(options, name)):
                    add(f"{name}[{number}]", f"SYNO_ACTIVATION__{name.upper()}", _secret(url))
    return targets


def _reachable(host: str | None, port: int) -> str | None:
    """None when a TCP connection opens (then closed at once: nothing is sent); else the reason."""
    if not host:
        return "no host in the URL"
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT_SECONDS):
            return None
    except socket.gaierror:
        return "name does not resolve"
    except OSError as error:
        return f"unreachable ({type(error).__name__})"


def target_checks(settings: Settings, services: Mapping[str, BaseModel]) -> list[Check]:
    targets = outside_targets(settings, services)
    if not targets:
        return [Check("targets", "ok", "no outside target configured")]
    checks = []
    for label, setting, host, port in targets:
        problem = _reachable(host, port)
        checks.append(Check("targets", "FAIL" if problem else "ok", f"{label}: {problem or 'reachable'}", setting))
    return checks


# --- the command ---------------------------------------------------------------------------------------------


def run_checks(skip: tuple[str, ...] = ()) -> list[Check]:
    """Every check in order; a check whose prerequisite failed is skipped."""
    try:
        settings, services, checks = service_settings()
    except SettingsInvalid as invalid:
        return invalid.checks
    if "nats" not in skip:
        found = asyncio.run(nats_checks(settings))
        checks += [check for check in found if check.check not in skip]
    if "postgres" not in skip:
        found = postgres_checks(settings)
        checks += [check for check in found if check.check not in skip]
        if "dbt" not in skip:
            if all(check.status != "FAIL" for check in found if check.check == "postgres"):
                checks += dbt_checks(settings, services)
            else:
                checks.append(Check("dbt", "skip", "PostgreSQL is not reachable"))
    for name, check_files in (("mapping", mapping_checks), ("share", share_checks)):
        if name not in skip:
            checks += check_files(settings)
    if "targets" not in skip:
        checks += target_checks(settings, services)
    return checks


def check(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    skip: Annotated[
        list[str] | None, typer.Option(help=f"Leave a check out (repeatable): {', '.join(CHECKS)}.")
    ] = None,
) -> None:
    """Check the deployment without writing anything: settings, NATS, streams, consumers, PostgreSQL, dbt,
    mapping tables, the share, and outside targets. Exits 1 when a check failed."""
    unknown = sorted(set(skip or ()) - set(CHECKS))
    if unknown:
        raise typer.BadParameter(f"unknown checks {unknown}; choose from {', '.join(CHECKS)}", param_hint="--skip")
    checks = run_checks(tuple(skip or ()))
    failed = [item for item in checks if item.status == "FAIL"]
    if as_json:
        typer.echo(json.dumps({"ok": not failed, "checks": [asdict(item) for item in checks]}))
    else:
        for item in checks:
            typer.echo(item.line())
        err.print(f"{len(failed)} failed of {len(checks)} checks" if failed else f"all {len(checks)} checks passed")
    if failed:
        raise typer.Exit(1)
