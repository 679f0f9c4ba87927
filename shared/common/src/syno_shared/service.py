"""What every service process shares: settings in, logging, telemetry, broker, pool, app.

`build_service` wires the edges once; a service's `main.create_app()` adds its subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import asyncpg
from faststream import AckPolicy, FastStream
from faststream.nats import JStream, NatsBroker, NatsMessage, PullSub
from faststream.nats.publisher.usecase import LogicPublisher

from syno_shared import access, bus, db, deadletter, health, migrate
from syno_shared.errors import SynoError
from syno_shared.events import Event, Stage
from syno_shared.logging import configure_logging, get_logger, redact_url
from syno_shared.settings import Settings
from syno_shared.stage import StageContext, dead_letter_from_advisory, event_decoder, reconcile_outbox
from syno_shared.telemetry import Telemetry, setup_telemetry

Handler = Callable[..., Awaitable[None]]
SettingsT = TypeVar("SettingsT", bound=Settings)
OUTBOX_EVERY_SECONDS = 60.0


class MissingServerError(SynoError):
    code = "missing_server"


@dataclass
class Service(Generic[SettingsT]):
    """A service's live edges. `pool` and `context` exist once the app has started."""

    name: Stage
    settings: SettingsT
    broker: NatsBroker
    telemetry: Telemetry
    pool_holder: list[asyncpg.Pool] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    """Facts the service adds to its health report (ingestion: `is_paused`, `files_waiting`)."""
    publishers: dict[str, LogicPublisher] = field(default_factory=dict)
    """Its typed publishers by subject (build_service declares them): its events leave through these."""

    @property
    def pool(self) -> asyncpg.Pool:
        if not self.pool_holder:
            raise RuntimeError("the service has not started: no database pool yet")
        return self.pool_holder[0]

    @property
    def context(self) -> StageContext:
        return StageContext(
            stage=self.name,
            broker=self.broker,
            pool=self.pool,
            stream_name=self.settings.stream_name,
            max_deliver=self.settings.max_deliver,
            publishers=self.publishers,
        )

    def subscriber(
        self,
        subject: str,
        *,
        durable_suffix: str = "",
        stream: JStream | None = None,
        ack_wait: float = bus.ACK_WAIT_SECONDS,
        max_workers: int = 1,
        event: type[Event] | None = None,
    ) -> Callable[[Handler], Any]:
        """A durable pull consumer named after the service, sharing work across replicas.

        The one consumer configuration of the project: explicit acks, bounded deliveries, naks on error
        (spaced by the handler), on the event stream unless another `stream` is given. On the event
        stream, the consumer's max-deliveries advisories are consumed too: a message whose worker died on
        every delivery is dead-lettered and reported, never silently dropped.

        With an `event` model the handler takes the typed event (`stage.event_decoder`: a malformed body is
        reported once and rejected) and the subscription is part of the AsyncAPI document; a handler that
        parses its own body (forecast's work queue) stays out of the event contract.
        """
        durable = f"syno-{self.name}" + (f"-{durable_suffix}" if durable_suffix else "")
        typed: dict[str, Any] = (
            {
                "decoder": event_decoder(lambda: self.context, event),
                "title": f"{subject}:to:{durable}",
                "description": f"{durable} consumes {event.__name__}: {event.__doc__}",
            }
            if event is not None
            else {"include_in_schema": False}
        )
        decorator: Callable[[Handler], Any] = self.broker.subscriber(
            subject,
            stream=stream or bus.stream(self.settings.stream_name),
            durable=durable,
            pull_sub=PullSub(batch_size=1, timeout=5.0),
            config=bus.consumer_config(durable, self.settings.max_deliver, ack_wait=ack_wait),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            max_workers=max_workers,
            inbox_prefix=bus.pull_inbox_prefix(self.settings.nats_user),  # the only inbox its NATS user may read
            **typed,
        )
        if stream is None:
            self._watch_max_deliveries(durable)
        return decorator

    def _watch_max_deliveries(self, durable: str) -> None:
        stream_name = self.settings.stream_name
        advisories = f"{durable}-dead-letters"

        @self.broker.subscriber(
            deadletter.advisory_subject(stream_name).replace("*", durable),
            stream=deadletter.advisory_stream(stream_name),
            durable=advisories,
            pull_sub=PullSub(batch_size=1, timeout=5.0),
            config=bus.consumer_config(advisories, self.settings.max_deliver),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            inbox_prefix=bus.pull_inbox_prefix(self.settings.nats_user),
            include_in_schema=False,  # NATS' own advisory, not one of our events
        )
        async def on_max_deliveries(message: NatsMessage) -> None:
            await dead_letter_from_advisory(self.context, message.body)


async def reconcile_forever(service: Service[Any], every_seconds: float = OUTBOX_EVERY_SECONDS) -> None:
    """At start-up and every minute: publish the completions a dead process committed but never published."""
    first = True
    while True:
        try:
            # At start-up nothing of ours is in flight; later, leave a live stage five minutes to publish its own.
            await reconcile_outbox(service.context, older_than_seconds=0.0 if first else 300.0)
            first = False
        except Exception:  # the database or the bus is away: the next round tries again
            get_logger().warning("outbox_reconcile_failed", exc_info=True)
        await asyncio.sleep(every_seconds)


_SERVED: list[FastStream] = []
T = TypeVar("T")
START_ATTEMPTS_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 30.0)  # about 90 s, then the process exits non-zero


async def until_reachable(server: str, connect: Callable[[], Awaitable[T]]) -> T:
    """`connect()`, retried with spaced delays while the server is unreachable; the last failure is raised."""
    for delay in START_ATTEMPTS_SECONDS:
        try:
            return await connect()
        except (TimeoutError, OSError, ConnectionError) as error:
            get_logger().warning("server_unreachable_at_start", server=server, error=str(error), retry_in=delay)
        except Exception as error:  # drivers wrap refusals in their own types (psycopg, asyncpg, nats)
            if not _is_connection_error(error):
                raise
            get_logger().warning("server_unreachable_at_start", server=server, error=str(error), retry_in=delay)
        await asyncio.sleep(delay)
    return await connect()


def _is_connection_error(error: Exception) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    return bool(
        names & {"OperationalError", "CannotConnectNowError", "ConnectionDoesNotExistError", "NoServersError"}
    ) or isinstance(error.__cause__, OSError)


def serve(app: FastStream) -> None:
    """Run a service process until SIGTERM or Ctrl-C; its shutdown then ends within the watchdog's grace."""
    _SERVED.append(app)
    asyncio.run(app.run())


def build_service(name: Stage, settings: SettingsT) -> tuple[FastStream, Service[SettingsT]]:
    configure_logging(name, settings.log_format)
    if not settings.nats_url or not settings.pg_dsn:
        raise MissingServerError(
            f"syno-{name} needs SYNO_NATS_URL and SYNO_PG_DSN; run `syno services` to start all four "
            "services on embedded servers, or set both variables"
        )
    telemetry = setup_telemetry(name, settings.otlp_endpoint)
    # Each service logs in as its own NATS user and PostgreSQL role (syno_shared.access), from its settings.
    nats_user = settings.nats_user
    nats_password = settings.nats_password.get_secret_value() if settings.nats_password is not None else None
    broker = bus.create_broker(
        settings.nats_url,
        user=nats_user,
        password=nats_password,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )
    service = Service(name=name, settings=settings, broker=broker, telemetry=telemetry)
    service.publishers.update(bus.declare_publishers(broker, access.service_bus(name).publishes, name))
    app = FastStream(broker)
    pg_dsn = settings.pg_dsn

    @app.on_startup
    async def open_edges() -> None:
        # A server restarting while the service starts is waited for (spaced, bounded), not a crash.
        await until_reachable(
            "NATS",
            lambda: bus.ensure_streams(
                settings.nats_url or "", settings.stream_name, user=nats_user, password=nats_password
            ),
        )
        if settings.migrate_on_start:  # else the deployment's setup applied them as the owner role
            sources = migrate.installed_sources(("ops", name))
            applied = await until_reachable(
                "PostgreSQL", lambda: asyncio.to_thread(migrate.apply_migrations, pg_dsn, sources)
            )
            if applied:
                get_logger().info("migrations_applied", migrations=applied)
        pool = await until_reachable("PostgreSQL", lambda: db.create_pool(pg_dsn))
        service.pool_holder.append(pool)
        get_logger().info("service_started", nats_url=redact_url(settings.nats_url or ""), nats_user=nats_user)

    background: list[asyncio.Task[None]] = []

    @app.after_startup
    async def start_background() -> None:
        background.append(asyncio.create_task(reconcile_forever(service), name="outbox-reconciler"))
        background.append(asyncio.create_task(health.report_forever(service), name="health"))

    @app.on_shutdown
    async def stop_background() -> None:
        if app in _SERVED:  # a service process (not an app a test runs in its own process)
            health.start_shutdown_watchdog()
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @app.after_shutdown
    async def close_edges() -> None:
        for pool in service.pool_holder:
            await pool.close()
        telemetry.shutdown()

    return app, service
