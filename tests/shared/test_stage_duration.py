"""The stage protocol measures every stage the same way and sends its events through the service's typed
publishers, against the real embedded NATS and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from faststream.nats.publisher.usecase import LogicPublisher
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from stage_app import landed, ready

from syno_shared import bus, db, migrate, telemetry
from syno_shared.errors import InputRejected, TransientError
from syno_shared.stage import StageContext, StageInput, StageOutcome, run_stage_input

pytestmark = pytest.mark.integration
SNAPSHOT = "a" * 64


class RecordingPublishers(dict[str, LogicPublisher]):
    """The service's publishers, noting which subjects were published through them."""

    used: list[str]

    def get(self, key: str, default: Any = None) -> Any:
        self.used.append(key)
        return super().get(key, default)


@pytest.fixture
def durations(monkeypatch: pytest.MonkeyPatch) -> InMemoryMetricReader:
    """STAGE_DURATION as declared, recording into a reader of the test's own (the global provider is the process's)."""
    reader = InMemoryMetricReader()
    spec = telemetry.STAGE_DURATION.spec
    instrument = MeterProvider(metric_readers=[reader]).get_meter("test").create_histogram(spec.name, unit=spec.unit)
    monkeypatch.setattr(telemetry, "STAGE_DURATION", telemetry.Histogram(spec, instrument))
    return reader


@pytest.fixture
async def context(nats_url: str, isolated_pg_dsn: str) -> AsyncIterator[StageContext]:
    await asyncio.to_thread(migrate.apply_migrations, isolated_pg_dsn, migrate.installed_sources(("ops",)))
    broker = bus.create_broker(nats_url)
    publishers = RecordingPublishers(bus.declare_publishers(broker, (bus.MARTS_READY, bus.PIPELINE_FAILED), "x"))
    publishers.used = []
    await broker.start()
    pool = await db.create_pool(isolated_pg_dsn)
    yield StageContext(
        stage="transform", broker=broker, pool=pool, stream_name="SYNO", max_deliver=2, publishers=publishers
    )
    await pool.close()
    await broker.stop()


def recorded(reader: InMemoryMetricReader) -> Counter[tuple[str, str]]:
    data = reader.get_metrics_data()
    assert data is not None
    counts: Counter[tuple[str, str]] = Counter()
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                assert metric.name == "syno_stage_duration_seconds" and metric.unit == "s"
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    assert set(attributes) == {"stage", "outcome"} and point.sum >= 0
                    counts[(str(attributes["stage"]), str(attributes["outcome"]))] += point.count  # type: ignore[attr-defined]
    return counts


async def test_every_outcome_is_timed_by_stage_and_outcome(
    context: StageContext, durations: InMemoryMetricReader
) -> None:
    async def succeed() -> StageOutcome:
        event = ready(landed(SNAPSHOT))
        async with context.pool.acquire() as connection:
            await db.record_completion(
                connection,
                snapshot_id=SNAPSHOT,
                stage="transform",
                run_id="r1",
                subject=bus.MARTS_READY,
                event_json=event.model_dump_json(),
            )
        return StageOutcome(subject=bus.MARTS_READY, event=event)

    async def flaky() -> StageOutcome:
        raise TransientError("warehouse restarting")

    async def rejected() -> StageOutcome:
        raise InputRejected("not a workbook", code="wrong_schema")

    first = StageInput(run_id="r1", snapshot_id=SNAPSHOT, reference="workbook.landed:1")
    await run_stage_input(context, stage_input=first, work=succeed)
    await run_stage_input(context, stage_input=first, work=succeed)  # done before: skipped
    other = "b" * 64
    for delivery in (1, 2):  # max_deliver 2: retried once, then failed for good
        retry = StageInput(run_id="r2", snapshot_id=other, reference="workbook.landed:2", delivery=delivery)
        await run_stage_input(context, stage_input=retry, work=flaky)
    bad = StageInput(run_id="r3", snapshot_id="c" * 64, reference="workbook.landed:3")
    await run_stage_input(context, stage_input=bad, work=rejected)

    assert recorded(durations) == {
        ("transform", "succeeded"): 1,
        ("transform", "skipped"): 1,
        ("transform", "retrying"): 1,
        ("transform", "failed"): 2,
    }


async def test_completions_and_failures_leave_through_the_typed_publishers(
    context: StageContext, nats_url: str, durations: InMemoryMetricReader
) -> None:
    async def rejected() -> StageOutcome:
        raise InputRejected("not a workbook", code="wrong_schema")

    event = ready(landed(SNAPSHOT))

    async def succeed() -> StageOutcome:
        async with context.pool.acquire() as connection:
            await db.record_completion(
                connection,
                snapshot_id=SNAPSHOT,
                stage="transform",
                run_id="r1",
                subject=bus.MARTS_READY,
                event_json=event.model_dump_json(),
            )
        return StageOutcome(subject=bus.MARTS_READY, event=event)

    await run_stage_input(
        context, stage_input=StageInput(run_id="r1", snapshot_id=SNAPSHOT, reference="w:1"), work=succeed
    )
    await run_stage_input(
        context, stage_input=StageInput(run_id="r2", snapshot_id="d" * 64, reference="w:2"), work=rejected
    )
    assert isinstance(context.publishers, RecordingPublishers)
    assert context.publishers.used == [bus.MARTS_READY, bus.PIPELINE_FAILED]
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        ready_message = await js.get_last_msg("SYNO", bus.MARTS_READY)
        failed_message = await js.get_last_msg("SYNO", bus.PIPELINE_FAILED)
    finally:
        await connection.close()
    assert (ready_message.headers or {})["Nats-Msg-Id"] == f"marts.ready:{SNAPSHOT}"
    assert bus.EVENT_MODELS[bus.MARTS_READY].model_validate_json(ready_message.data or b"") == event
    failure = bus.EVENT_MODELS[bus.PIPELINE_FAILED].model_validate_json(failed_message.data or b"")
    assert failure.model_dump(include={"snapshot_id", "reason_code"}) == {
        "snapshot_id": "d" * 64,
        "reason_code": "wrong_schema",
    }
