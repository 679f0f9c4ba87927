"""OpenLineage run events to a local HTTP receiver and to a file; one run's events for every stage."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from activation_fakes import LocalHTTPServer

from syno_activation.lineage import (
    STAGE_DATASETS,
    DatasetRef,
    LineageResult,
    LineageTransportConfig,
    emit_pipeline_lineage,
    emit_stage_lineage,
    lineage_run_id,
)
from syno_shared.events import DeliveryResult

RUN = uuid.UUID("0f8e2d4c-1b3a-4c5d-8e9f-001122334455")
PARENT = uuid.UUID("a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d")


def test_http_receiver_gets_a_run_event_with_parent_and_datasets(
    http_server: Callable[..., LocalHTTPServer],
) -> None:
    server = http_server(lambda request: (201, b""))
    result = emit_stage_lineage(
        LineageTransportConfig(kind="http", url=server.url, api_key="LINEAGE-KEY"),
        stage="transform",
        run_id=RUN.hex,
        parent_run_id=PARENT.hex,
        event_type="START",
        inputs=["raw.sales_lines"],
        outputs=[DatasetRef("postgres://db:5432", "syno.marts.sellout_quarterly")],
        snapshot_id="abc123",
    )

    assert result == LineageResult(True, "START for syno.transform sent to http", str(RUN), "START")
    [request] = server.requests
    assert request.path == "/api/v1/lineage"
    assert request.headers["authorization"] == "Bearer LINEAGE-KEY"
    event = request.json
    assert event["eventType"] == "START"
    assert event["producer"] == "urn:syno:pipeline"
    assert event["run"]["runId"] == str(RUN)
    assert event["job"]["namespace"] == "syno"
    assert event["job"]["name"] == "syno.transform"
    assert event["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    parent = event["run"]["facets"]["parent"]
    assert parent["run"] == {"runId": str(PARENT), "facets": {}}
    assert parent["job"] == {"namespace": "syno", "name": "syno.workbook", "facets": {}}
    assert {"key": "snapshot_id", "value": "abc123", "source": "SYNO"} in event["run"]["facets"]["tags"]["tags"]
    assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [("syno", "raw.sales_lines")]
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
        ("postgres://db:5432", "syno.marts.sellout_quarterly")
    ]


def test_fail_event_carries_the_error_message(http_server: Callable[..., LocalHTTPServer]) -> None:
    server = http_server(lambda request: (200, b""))
    emit_stage_lineage(
        LineageTransportConfig(kind="http", url=server.url, endpoint="lineage/events"),
        stage="forecast",
        run_id=str(RUN),
        parent_run_id=str(PARENT),
        event_type="FAIL",
        error_message="no complete quarter",
    )

    [request] = server.requests
    assert request.path == "/lineage/events"
    assert "authorization" not in request.headers
    facets = request.json["run"]["facets"]
    assert request.json["eventType"] == "FAIL"
    assert (facets["errorMessage"]["message"], facets["errorMessage"]["programmingLanguage"]) == (
        "no complete quarter",
        "python",
    )


def test_a_failing_receiver_is_retried_and_reported_without_raising(
    http_server: Callable[..., LocalHTTPServer],
) -> None:
    server = http_server(lambda request: (503, b"down"))
    result = emit_stage_lineage(
        LineageTransportConfig(kind="http", url=server.url, api_key="LINEAGE-KEY", retries=1, backoff_seconds=0.01),
        stage="activation",
        run_id=RUN.hex,
        parent_run_id=PARENT.hex,
        event_type="COMPLETE",
    )

    assert len(server.requests) == 2
    assert result == LineageResult(False, "http transport failed: RetryError", str(RUN), "COMPLETE")


def test_an_unreachable_receiver_is_reported_without_raising() -> None:
    result = emit_stage_lineage(
        LineageTransportConfig(kind="http", url="http://127.0.0.1:9", retries=0),
        stage="activation",
        run_id=RUN.hex,
        parent_run_id=PARENT.hex,
        event_type="COMPLETE",
    )
    assert result == LineageResult(False, "http transport failed: ConnectionError", str(RUN), "COMPLETE")


def test_file_transport_appends_one_json_event_per_line(tmp_path: Path) -> None:
    path = tmp_path / "lineage.jsonl"
    config = LineageTransportConfig(kind="file", file_path=str(path))
    for event_type in ("START", "COMPLETE"):
        result = emit_stage_lineage(
            config, stage="ingestion", run_id=RUN.hex, parent_run_id=PARENT.hex, event_type=event_type
        )
        assert result.is_ok

    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["eventType"], e["job"]["name"], e["run"]["runId"]) for e in events] == [
        ("START", "syno.ingestion", str(RUN)),
        ("COMPLETE", "syno.ingestion", str(RUN)),
    ]


def test_file_transport_failure_and_bad_config_are_results_not_exceptions(tmp_path: Path) -> None:
    missing = LineageTransportConfig(kind="file", file_path=str(tmp_path / "no" / "such" / "dir.jsonl"))
    result = emit_stage_lineage(
        missing, stage="ingestion", run_id=RUN.hex, parent_run_id=PARENT.hex, event_type="START"
    )
    assert not result.is_ok
    assert result.detail.startswith("file transport failed: Failed to write to log file")

    no_url = LineageTransportConfig(kind="http")
    result = emit_stage_lineage(no_url, stage="ingestion", run_id=RUN.hex, parent_run_id=PARENT.hex, event_type="START")
    assert result == LineageResult(False, "bad http transport config: http transport needs url", str(RUN), "START")


def test_run_ids_that_are_not_uuids_map_to_a_stable_uuid() -> None:
    """A UUID in any spelling is sent canonical; any other id always gets the same, distinct UUID."""
    assert lineage_run_id(RUN.hex) == lineage_run_id(str(RUN).upper()) == str(RUN)
    first, again, other = lineage_run_id("run-1"), lineage_run_id("run-1"), lineage_run_id("run-2")
    assert first == again != other
    assert str(uuid.UUID(first)) == first


async def test_a_finished_run_sends_one_complete_event_per_stage_under_the_run(tmp_path: Path) -> None:
    path = tmp_path / "lineage.jsonl"
    result = await emit_pipeline_lineage(
        LineageTransportConfig(kind="file", file_path=str(path)), run_id=PARENT.hex, snapshot_id="abc123"
    )

    assert result == DeliveryResult(target="openlineage:file", is_ok=True, detail="4 run events")
    events = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(event["eventType"], event["job"]["name"]) for event in events] == [
        ("COMPLETE", "syno.ingestion"),
        ("COMPLETE", "syno.transform"),
        ("COMPLETE", "syno.forecast"),
        ("COMPLETE", "syno.activation"),
    ]
    assert {event["run"]["facets"]["parent"]["run"]["runId"] for event in events} == {str(PARENT)}
    assert len({event["run"]["runId"] for event in events}) == 4  # one run per stage
    activation = events[3]
    assert [dataset["name"] for dataset in activation["inputs"]] == STAGE_DATASETS["activation"][0]
    assert [dataset["name"] for dataset in activation["outputs"]] == ["activation.storylines"]


async def test_a_run_whose_lineage_cannot_be_written_reports_why_and_off_reports_nothing(tmp_path: Path) -> None:
    unwritable = LineageTransportConfig(kind="file", file_path=str(tmp_path / "missing" / "lineage.jsonl"))
    result = await emit_pipeline_lineage(unwritable, run_id=PARENT.hex, snapshot_id="abc123")

    assert result is not None
    assert (result.target, result.is_ok) == ("openlineage:file", False)
    assert result.detail.count("file transport failed") == 4
    assert await emit_pipeline_lineage(LineageTransportConfig(kind="off"), run_id="r", snapshot_id="s") is None
