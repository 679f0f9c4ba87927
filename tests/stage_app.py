"""A stand-in stage on the real protocol (real app, real NATS, real PostgreSQL), for tests of the protocol itself.

It handles workbook.landed like transform would: its work either fails transiently or records a completion
and returns a marts.ready, and it counts how often the work ran.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from faststream.nats import NatsMessage

from syno_shared import bus, db
from syno_shared.errors import TransientError
from syno_shared.events import MartsReady, QualityFacts, SnapshotDelta, WorkbookFacts, WorkbookLanded
from syno_shared.service import build_service
from syno_shared.settings import Settings
from syno_shared.stage import StageOutcome, run_stage


def landed(snapshot_id: str, run_id: str = "run-1") -> WorkbookLanded:
    return WorkbookLanded(
        run_id=run_id,
        snapshot_id=snapshot_id,
        file_name="w.xlsx",
        path="processed/w.xlsx",
        size_bytes=1,
        delta=SnapshotDelta(is_first=True),
        sheets=[],
        contract_version="1.0",
        mapping_versions={},
    )


def ready(event: WorkbookLanded) -> MartsReady:
    return MartsReady(
        run_id=event.run_id,
        snapshot_id=event.snapshot_id,
        dbt_invocation_id="i",
        models_built=[],
        mart_rows={},
        workbook=WorkbookFacts(
            file_name=event.file_name, size_bytes=event.size_bytes, sheet_rows={}, delta=event.delta
        ),
        quality=QualityFacts(rows_loaded=0, tests_passed=0, tests_warned=0, tests_failed=0),
        data_freshness=None,
        latest_complete_quarter=None,
    )


@dataclass
class StandInStage:
    is_failing: bool = False
    calls: int = 0
    snapshots: list[str] | None = None


@contextlib.asynccontextmanager
async def stand_in_stage(
    nats_url: str, pg_dsn: str, data_dir: Path, *, max_deliver: int = 5
) -> AsyncIterator[StandInStage]:
    behaviour = StandInStage(snapshots=[])
    app, service = build_service(
        "transform", Settings(nats_url=nats_url, pg_dsn=pg_dsn, data_dir=data_dir, max_deliver=max_deliver)
    )

    @service.subscriber(bus.WORKBOOK_LANDED, event=WorkbookLanded)  # typed as the services' subscribers are
    async def on_landed(event: WorkbookLanded, message: NatsMessage) -> None:
        async def work() -> StageOutcome:
            behaviour.calls += 1
            assert behaviour.snapshots is not None
            behaviour.snapshots.append(event.snapshot_id)
            if behaviour.is_failing:
                raise TransientError("warehouse unreachable")
            async with service.pool.acquire() as connection:
                await db.record_completion(
                    connection,
                    snapshot_id=event.snapshot_id,
                    stage="transform",
                    run_id=event.run_id,
                    subject=bus.MARTS_READY,
                    event_json=ready(event).model_dump_json(),
                )
            return StageOutcome(subject=bus.MARTS_READY, event=ready(event))

        await run_stage(service.context, event_in=event, message=message, work=work)

    async with app:
        yield behaviour
