"""Least privilege as rules: what each process may do on NATS and in PostgreSQL. No I/O here.

NATS: one user per service, allowed to publish exactly its own events, the dead letters of its own
inputs and the JetStream API calls of its own consumers, and to receive only on its own inbox prefix
(`_INBOX.<user>`: no service reads what the server hands another). Services may create the shared
streams (a no-op when they exist with this version's configuration) but not update, purge or delete
them; forecast may also update its own work queue. The `operator` user does everything else: streams,
replays, redrives, `syno dlq`. The embedded runtime renders these rules into the nats-server
configuration it starts (random passwords), and deploy/nats/auth.conf is the same rendering with the
passwords read from the environment; a test keeps the two equal.

PostgreSQL: the owner role applies the migrations and owns the schemas; each service logs in with its
own role (`syno_<service>`) holding only the grants of migrations/post-apply.py; `syno_reader` (Metabase)
reads the marts, forecasts and storylines, `syno_monitor` (Grafana) the ops trail and the forecasts.
Roles are created by the migrations (no login); passwords are set by the embedded runtime or the
deployment's setup job (`syno_shared.provision`), never written in a migration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from syno_shared import bus, control, deadletter
from syno_shared.settings import with_login

SERVICES: Final = ("ingestion", "transform", "forecast", "activation")
OPERATOR: Final = "operator"
NATS_USERS: Final = (OPERATOR, *SERVICES)

READER_ROLE: Final = "syno_reader"
"""Metabase: the published marts (stable views), forecasts and storylines; nothing of ops, raw or ref."""
MONITOR_ROLE: Final = "syno_monitor"
"""Grafana: the ops trail (runs, files, alerts) and the forecasts its dashboards chart; no raw data."""

# The forecast service's own work queue (syno_forecast.workqueue defines it; a test keeps these equal).
FORECAST_WORK_STREAM: Final = "SYNO_FORECAST_WORK"
FORECAST_WORK_SUBJECTS: Final = "forecast.work.*"


def pg_role(service: str) -> str:
    """The PostgreSQL login role of a service."""
    return f"syno_{service}"


PG_ROLES: Final = (*(pg_role(service) for service in SERVICES), READER_ROLE, MONITOR_ROLE)


@dataclass(frozen=True)
class Consumer:
    """A durable pull consumer a service runs (named as `Service.subscriber` names it)."""

    stream: str
    durable: str
    subject: str
    is_event_stream: bool = True
    """On the event stream: its max-deliveries advisories are consumed too, and its inputs dead-lettered."""


@dataclass(frozen=True)
class ServiceBus:
    """What a service does on the bus."""

    service: str
    publishes: tuple[str, ...]
    consumes: tuple[Consumer, ...] = ()
    own_streams: tuple[str, ...] = ()
    """Streams only this service uses: it may update them as well as create them."""
    reads_control: tuple[str, ...] = ()
    """Keys of the control bucket (syno_shared.control) it obeys: it may read them, never write them."""


def service_bus(service: str, stream_name: str = "SYNO") -> ServiceBus:
    """The subjects and consumers of each service, as its handlers use them."""
    durable = f"syno-{service}"
    if service == "ingestion":
        return ServiceBus(service, publishes=(bus.WORKBOOK_LANDED, bus.PIPELINE_FAILED), reads_control=("ingestion",))
    if service == "transform":
        return ServiceBus(
            service,
            publishes=(bus.MARTS_READY, bus.PIPELINE_FAILED),
            consumes=(Consumer(stream_name, durable, bus.WORKBOOK_LANDED),),
        )
    if service == "forecast":
        return ServiceBus(
            service,
            publishes=(bus.FORECAST_PUBLISHED, bus.PIPELINE_FAILED, FORECAST_WORK_SUBJECTS),
            consumes=(
                Consumer(stream_name, durable, bus.MARTS_READY),
                Consumer(FORECAST_WORK_STREAM, f"{durable}-work", FORECAST_WORK_SUBJECTS, is_event_stream=False),
            ),
            own_streams=(FORECAST_WORK_STREAM,),
        )
    if service == "activation":
        return ServiceBus(
            service,
            publishes=(bus.ACTIVATION_COMPLETED, bus.PIPELINE_FAILED),
            consumes=(
                Consumer(stream_name, durable, bus.FORECAST_PUBLISHED),
                Consumer(stream_name, f"{durable}-alerts", bus.PIPELINE_FAILED),
            ),
        )
    raise ValueError(f"unknown service {service!r}")


def _consumer_api(stream: str, durable: str) -> list[str]:
    """Create (or re-declare) one named consumer, read its info, pull from it, ack what it pulled."""
    return [
        f"$JS.API.CONSUMER.CREATE.{stream}.{durable}",
        f"$JS.API.CONSUMER.CREATE.{stream}.{durable}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


@dataclass(frozen=True)
class NatsPermissions:
    user: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def nats_permissions(user: str, stream_name: str = "SYNO") -> NatsPermissions:
    """The subjects a NATS user may publish to and subscribe to; anything else is refused by the server."""
    if user == OPERATOR:
        return NatsPermissions(user, publish=(">",), subscribe=(">",))
    plan = service_bus(user, stream_name)
    shared_streams = (stream_name, deadletter.DLQ_STREAM, deadletter.ADVISORY_STREAM)
    publish = list(plan.publishes)
    # Create the shared streams if missing (an existing one with this configuration: a no-op); read their info.
    for stream in (*shared_streams, *plan.own_streams):
        publish += [f"$JS.API.STREAM.CREATE.{stream}", f"$JS.API.STREAM.INFO.{stream}"]
    publish += [f"$JS.API.STREAM.UPDATE.{stream}" for stream in plan.own_streams]
    if plan.reads_control:
        # The pause switch (`syno pause`): the bucket's info, then a direct get of its own keys only.
        control_stream = control.bucket_stream()
        publish += [f"$JS.API.STREAM.INFO.{control_stream}"]
        publish += [f"$JS.API.DIRECT.GET.{control_stream}.{control.key_subject(key)}" for key in plan.reads_control]
    for consumer in plan.consumes:
        publish += _consumer_api(consumer.stream, consumer.durable)
        if consumer.is_event_stream:
            # A message no delivery could process: its advisory, the message read back, its dead letter.
            publish += _consumer_api(deadletter.ADVISORY_STREAM, f"{consumer.durable}-dead-letters")
            publish += [f"$JS.API.STREAM.MSG.GET.{consumer.stream}", f"dlq.{consumer.subject}"]
    return NatsPermissions(user, publish=tuple(dict.fromkeys(publish)), subscribe=(f"{bus.inbox_prefix(user)}.>",))


def password_variable(user: str) -> str:
    """The environment variable holding a NATS user's password in the deployment (compose's .env)."""
    return f"NATS_{user.upper()}_PASSWORD"


def nats_authorization(passwords: Mapping[str, str] | None = None, stream_name: str = "SYNO") -> str:
    """The nats-server `authorization` block: every user with its permissions.

    With `passwords`, each user's password is written quoted (the embedded runtime's generated file);
    without, each is a reference to its environment variable, which nats-server resolves at start.
    """
    lines = ["authorization {", "  users = ["]
    for user in NATS_USERS:
        permissions = nats_permissions(user, stream_name)
        password = json.dumps(passwords[user]) if passwords is not None else f"${password_variable(user)}"
        lines += [
            "    {",
            f"      user: {json.dumps(user)}",
            f"      password: {password}",
            "      permissions: {",
            "        publish: { allow: [",
            *(f"          {json.dumps(subject)}" for subject in permissions.publish),
            "        ] }",
            "        subscribe: { allow: [",
            *(f"          {json.dumps(subject)}" for subject in permissions.subscribe),
            "        ] }",
            "      }",
            "    }",
        ]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def nats_auth_file(stream_name: str = "SYNO") -> str:
    """deploy/nats/auth.conf: the authorization block with the passwords read from nats-server's environment."""
    header = (
        "# NATS users and permissions of the syno deployment, included by nats.conf. Generated from\n"
        "# syno_shared.access (the embedded runtime starts nats-server with the same block); do not edit, regenerate:\n"
        "#   uv run --frozen python -c 'from syno_shared import access; print(access.nats_auth_file(), end=\"\")' \\\n"
        "#     > deploy/nats/auth.conf\n"
        "# Each password is an environment variable of the nats container, set by compose from .env.\n\n"
    )
    return header + nats_authorization(None, stream_name)


@dataclass(frozen=True)
class ServiceCredentials:
    """What one service process logs in with (None: the runtime did not create it; the setting stays)."""

    nats_user: str | None = None
    nats_password: SecretStr | None = None
    pg_role: str | None = None
    pg_password: SecretStr | None = None


def with_credentials(url: str, user: str, password: str) -> str:
    """The same server URL or DSN, logging in as `user` with `password` (both percent-encoded)."""
    return with_login(url, user, password)


def without_credentials(url: str) -> str:
    """The URL with no user or password in it (the process gets those apart, as settings)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
