"""Events are frozen, versioned, strict and round-trip through JSON unchanged."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pydantic
import pytest

from syno_shared import bus
from syno_shared.errors import InputRejected
from syno_shared.events import (
    SCHEMA_VERSION,
    ActivationCompleted,
    DeliveryResult,
    ForecastPublished,
    MartsReady,
    PipelineFailed,
    QualityFacts,
    SheetLanded,
    SnapshotDelta,
    WorkbookLanded,
    resolve_inside,
    snapshot_or_unknown,
    workbook_facts,
)

SNAPSHOT = "a" * 64


def landed() -> WorkbookLanded:
    return WorkbookLanded(
        run_id="r1",
        snapshot_id=SNAPSHOT,
        produced_at=datetime(2026, 11, 26, 7, 0, tzinfo=UTC),
        file_name="Sell-out ü.xlsx",
        path="processed/ingestion/aaa/source-Sell-out ü.xlsx",
        size_bytes=1234,
        delta=SnapshotDelta(is_first=True),
        sheets=[
            SheetLanded(
                name="2024-C2", kind="c2", year=2024, rows=10, columns=["PI"], parquet_path="processed/x.parquet"
            )
        ],
        contract_version="1.0",
        mapping_versions={"exchange_rates.csv": "b" * 64},
    )


def test_event_round_trips_through_json() -> None:
    event = landed()
    assert WorkbookLanded.model_validate_json(event.model_dump_json()) == event
    assert event.schema_version == SCHEMA_VERSION


def test_events_are_frozen_and_reject_unknown_fields() -> None:
    event = landed()
    with pytest.raises(pydantic.ValidationError):
        event.size_bytes = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        WorkbookLanded.model_validate({**event.model_dump(), "surprise": 1})


def test_every_event_carries_run_snapshot_and_time() -> None:
    failed = PipelineFailed(
        run_id="r1",
        snapshot_id=SNAPSHOT,
        stage="transform",
        reason_code="dbt_test_failed",
        message="x",
        is_retryable=False,
        input_reference="workbook.landed:aaa",
    )
    assert failed.produced_at.tzinfo is not None
    for model in (WorkbookLanded, MartsReady, ForecastPublished, ActivationCompleted, PipelineFailed):
        assert {"schema_version", "run_id", "snapshot_id", "produced_at"} <= set(model.model_fields)
        assert all(field.description for field in model.model_fields.values())


def test_pipeline_failed_refuses_an_unknown_stage() -> None:
    with pytest.raises(pydantic.ValidationError):
        PipelineFailed(
            run_id="r",
            snapshot_id=SNAPSHOT,
            stage="cleanup",  # type: ignore[arg-type]
            reason_code="x",
            message="x",
            is_retryable=False,
            input_reference="x",
        )


def test_marts_ready_keeps_dates() -> None:
    ready = MartsReady(
        run_id="r",
        snapshot_id=SNAPSHOT,
        dbt_invocation_id="inv",
        models_built=["model.syno.svr_rm_quarterly"],
        mart_rows={"marts.svr_rm_quarterly": 40},
        workbook=workbook_facts(landed()),
        quality=QualityFacts(rows_loaded=10, tests_passed=3, tests_warned=0, tests_failed=0),
        data_freshness=date(2024, 11, 14),
        latest_complete_quarter=date(2024, 7, 1),
    )
    assert MartsReady.model_validate_json(ready.model_dump_json()).latest_complete_quarter == date(2024, 7, 1)
    assert ready.workbook.sheet_rows == {"2024-C2": 10}  # the file's facts travel on, no stage re-reads them


def test_activation_completed_lists_deliveries() -> None:
    done = ActivationCompleted(
        run_id="r",
        snapshot_id=SNAPSHOT,
        storylines=3,
        dashboards=[DeliveryResult(target="dashboard:1", is_ok=True)],
        notifications=[DeliveryResult(target="slack", is_ok=False, detail="HTTP 500")],
    )
    assert [n.target for n in done.notifications] == ["slack"]


def test_subjects_and_message_ids() -> None:
    assert bus.ALL_SUBJECTS == (
        "workbook.landed",
        "marts.ready",
        "forecast.published",
        "activation.completed",
        "pipeline.failed",
    )
    assert bus.message_id("workbook.landed", "abc") == "workbook.landed:abc"
    assert bus.message_id("marts.ready", "abc", "replay-1") == "marts.ready:abc:replay-1"


@pytest.mark.parametrize("snapshot_id", ["snap-1", "A" * 64, "a" * 63, "a" * 64 + "\n", "../" + "a" * 61])
def test_a_snapshot_id_is_a_sha256_or_the_event_is_refused(snapshot_id: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="should match pattern"):
        WorkbookLanded.model_validate({**json.loads(landed().model_dump_json()), "snapshot_id": snapshot_id})


def test_a_failure_from_an_input_without_a_valid_snapshot_says_unknown() -> None:
    assert snapshot_or_unknown("a" * 64) == "a" * 64
    assert snapshot_or_unknown("../../etc/passwd") == snapshot_or_unknown(None) == "unknown"
    failure = PipelineFailed(
        run_id="r",
        snapshot_id="unknown",
        stage="transform",
        reason_code="bad_event",
        message="m",
        is_retryable=False,
        input_reference="workbook.landed:7",
    )
    assert failure.snapshot_id == "unknown"


def test_a_path_that_leads_outside_the_data_folder_through_a_link_is_refused(tmp_path: Path) -> None:
    """The event's text is checked on arrival (relative, no '..'); where it really leads, when a stage opens it."""
    data_dir, outside = tmp_path / "data", tmp_path / "outside"
    (data_dir / "processed").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.parquet").write_bytes(b"not yours")
    (data_dir / "processed" / "sheet.parquet").write_bytes(b"PAR1")
    (data_dir / "processed" / "planted").symlink_to(outside)

    assert resolve_inside(data_dir, "processed/sheet.parquet") == (data_dir / "processed" / "sheet.parquet").resolve()
    with pytest.raises(InputRejected, match="leads outside the data folder") as refused:
        resolve_inside(data_dir, "processed/planted/secret.parquet")
    assert refused.value.code == "path_outside_data"
    with pytest.raises(ValueError, match="not a path inside the data folder"):
        resolve_inside(data_dir, "../outside/secret.parquet")


@pytest.mark.parametrize("schema", ['marts"; drop table raw.sales_lines; --', "Marts", "1marts", "a" * 64, "b.marts"])
def test_a_marts_schema_that_is_no_plain_identifier_is_refused(schema: str) -> None:
    """The schema a reader is pinned to goes into SQL (quoted): only plain lower-case identifiers are accepted."""
    ready = MartsReady(
        run_id="r",
        snapshot_id=SNAPSHOT,
        dbt_invocation_id="inv",
        models_built=[],
        mart_rows={},
        workbook=workbook_facts(landed()),
        quality=QualityFacts(rows_loaded=10, tests_passed=3, tests_warned=0, tests_failed=0),
        data_freshness=date(2024, 11, 14),
        latest_complete_quarter=date(2024, 7, 1),
    )
    with pytest.raises(pydantic.ValidationError, match="marts_schema"):
        MartsReady.model_validate({**json.loads(ready.model_dump_json()), "marts_schema": schema})
