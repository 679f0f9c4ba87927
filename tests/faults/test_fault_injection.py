"""Crashes, restarts and outages, injected for real, end in the same result as a clean run, exactly once.

Every case runs the four services as separate processes against a NATS server and a database of its
own, hurts the pipeline (a SIGKILL at a named point, a NATS or PostgreSQL restart), restarts what died,
and then requires: the run completes within 90 s of the restart; every mart, forecast and storyline
equals a clean run's; one event per subject for the snapshot and no failure; one summary notification;
no stage run left 'running'. The outcome of each case is written to docs/RELIABILITY.md.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from golden.tables import TABLES, differences, read_tables
from own_databases import new_database

from syno_sample.workbook import SampleSpec, write_workbook
from syno_shared import bus, health
from syno_shared.embedded import EmbeddedPostgres
from syno_shared.fingerprint import file_sha256

from .harness import SERVICES, Pipeline
from .report import Outcome, record

pytestmark = pytest.mark.faults

MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"
RESULT_TABLES = (*TABLES, "activation.storylines")
SUBJECTS = (bus.WORKBOOK_LANDED, bus.MARTS_READY, bus.FORECAST_PUBLISHED, bus.ACTIVATION_COMPLETED)
RESTART_TO_DONE_SECONDS = 90


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "sell-out.xlsx"
    write_workbook(path, SampleSpec(rows_per_year=3_000, seed=5), MAPPING_DIR)
    return path


@pytest.fixture(scope="module")
def clean_run(workbook: Path, tmp_path_factory: pytest.TempPathFactory, module_pg_dsn: str) -> dict[str, Any]:
    """The tables a run with no fault produces: what every hurt run must end with."""
    pipeline = Pipeline(tmp_path_factory.mktemp("clean"), module_pg_dsn, MAPPING_DIR)
    try:
        pipeline.start_all()
        pipeline.drop(workbook)
        pipeline.wait_for(bus.ACTIVATION_COMPLETED, file_sha256(workbook), timeout=420)
        return asyncio_run_tables(module_pg_dsn)
    finally:
        pipeline.stop()


@pytest.fixture(scope="module")
def module_pg_dsn(endpoints: Any) -> str:
    return new_database(endpoints.pg_dsn, prefix="faults")


def asyncio_run_tables(dsn: str) -> dict[str, Any]:
    import asyncio

    return asyncio.run(read_tables(dsn, RESULT_TABLES))


@pytest.fixture
def pipeline(tmp_path: Path, isolated_pg_dsn: str) -> Iterator[Pipeline]:
    running = Pipeline(tmp_path, isolated_pg_dsn, MAPPING_DIR)
    yield running
    running.stop()


def summaries(pipeline: Pipeline) -> list[str]:
    """The run summaries the webhook received (not alerts: failures, or a deadline that paged meanwhile)."""
    return [title for title in pipeline.webhook.titles().elements() if title.startswith("syno: forecasts for")]


def check_outcome(pipeline: Pipeline, clean_run: dict[str, Any], snapshot_id: str, since_restart: float) -> str:
    """Assert the promises; returns what was observed, in words, for docs/RELIABILITY.md."""
    assert since_restart <= RESTART_TO_DONE_SECONDS, f"completed {since_restart:.0f} s after the restart"
    counts = {
        subject: sum(body.get("snapshot_id") == snapshot_id for _, _, body in pipeline.events(subject))
        for subject in (*SUBJECTS, bus.PIPELINE_FAILED)
    }
    assert counts == {**dict.fromkeys(SUBJECTS, 1), bus.PIPELINE_FAILED: 0}
    assert differences(clean_run, asyncio_run_tables(pipeline.pg_dsn), {}) == {}
    # The outbox may send the summary just after the event (a restarted activation's sweep): wait for it,
    # then make sure no second one follows.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not summaries(pipeline):
        time.sleep(0.5)
    time.sleep(3)
    assert len(summaries(pipeline)) == 1, pipeline.webhook.titles()
    statuses = [status for _, status in pipeline.stage_runs()]
    assert "running" not in statuses
    abandoned = statuses.count("abandoned")
    return (
        f"completed {since_restart:.0f} s after the restart; tables equal the clean run's; one event per subject; "
        f"one summary; no run left running ({abandoned} closed as abandoned)"
    )


KILL_POINTS = [
    ("ingestion", "ingestion.after_split", "SIGKILL after the sheets were split, before the manifest"),
    ("ingestion", "ingestion.after_manifest", "SIGKILL after the manifest commit, before the file moved and the event"),
    ("transform", "transform.work:2", "SIGKILL 2 s into the transform's work (clean, COPY, dbt)"),
    ("transform", "transform.after_commit", "SIGKILL after the transform's commit, before marts.ready"),
    ("transform", "transform.after_publish", "SIGKILL after marts.ready was published, before the ack"),
    ("forecast", "forecast.work:1", "SIGKILL of the forecast coordinator 1 s into the fitting"),
    ("activation", "activation.queued", "SIGKILL after activation recorded its run and outbox, before notifying"),
    ("activation", "activation.after_commit", "SIGKILL after activation's commit, before its event"),
]


@pytest.mark.parametrize(("service", "point", "injected"), KILL_POINTS, ids=[point for _, point, _ in KILL_POINTS])
def test_a_killed_service_restarts_into_the_same_result(
    pipeline: Pipeline, clean_run: dict[str, Any], workbook: Path, service: str, point: str, injected: str
) -> None:
    snapshot_id = file_sha256(workbook)
    pipeline.start_all({service: point})
    pipeline.drop(workbook)
    assert pipeline.wait_dead(service) == -9, f"{service} did not reach {point}"
    pipeline.restart(service)
    restarted = time.monotonic()
    pipeline.wait_for(bus.ACTIVATION_COMPLETED, snapshot_id, timeout=RESTART_TO_DONE_SECONDS + 60)
    observed = check_outcome(pipeline, clean_run, snapshot_id, time.monotonic() - restarted)
    record(Outcome(f"{service} killed at {point}", injected, observed))


def test_a_nats_restart_mid_run_loses_nothing(pipeline: Pipeline, clean_run: dict[str, Any], workbook: Path) -> None:
    snapshot_id = file_sha256(workbook)
    pipeline.start_all()
    wait_health(pipeline, is_healthy=True)  # a restart mid-run, not while the services start
    pipeline.drop(workbook)
    pipeline.wait_for_stage_run("transform")
    pipeline.nats_server.restart(down_seconds=3)
    restarted = time.monotonic()
    pipeline.wait_for(bus.ACTIVATION_COMPLETED, snapshot_id, timeout=RESTART_TO_DONE_SECONDS + 60)
    assert all(process.poll() is None for process in pipeline.processes.values()), "a service gave up on NATS"
    observed = check_outcome(pipeline, clean_run, snapshot_id, time.monotonic() - restarted)
    record(Outcome("NATS restarted mid-run", "NATS stopped 3 s while transform worked, then started", observed))


def test_a_postgres_restart_mid_run_loses_nothing(tmp_path: Path, clean_run: dict[str, Any], workbook: Path) -> None:
    # In /tmp like the embedded runtime's: the server's own user must reach its data folder (pytest's is 0700).
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="syno-faults-pg-")) / "pg")
    server.start()
    pipeline = Pipeline(tmp_path / "run", server.dsn, MAPPING_DIR)
    try:
        snapshot_id = file_sha256(workbook)
        pipeline.start_all()
        wait_health(pipeline, is_healthy=True)  # a restart mid-run, not while the services start
        pipeline.drop(workbook)
        pipeline.wait_for_stage_run("transform")
        server.restart(down_seconds=3)
        restarted = time.monotonic()
        pipeline.wait_for(bus.ACTIVATION_COMPLETED, snapshot_id, timeout=RESTART_TO_DONE_SECONDS + 60)
        assert all(process.poll() is None for process in pipeline.processes.values())
        observed = check_outcome(pipeline, clean_run, snapshot_id, time.monotonic() - restarted)
    finally:
        pipeline.stop()
        server.stop()
    record(Outcome("PostgreSQL restarted mid-run", "PostgreSQL stopped 3 s while transform worked", observed))


def test_the_services_are_all_covered() -> None:
    assert {service for service, _, _ in KILL_POINTS} == set(SERVICES)


def wait_health(pipeline: Pipeline, *, is_healthy: bool, timeout: float = 240) -> None:
    import os

    os.environ["SYNO_HEALTH_DIR"] = str(pipeline.root)
    try:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if all(health.is_healthy(name)[0] == is_healthy for name in SERVICES):
                return
            time.sleep(1)
        raise AssertionError({name: health.is_healthy(name) for name in SERVICES})
    finally:
        del os.environ["SYNO_HEALTH_DIR"]


def terminate_all(pipeline: Pipeline) -> dict[str, float]:
    """SIGTERM every service at once; seconds each took to exit."""
    started = time.monotonic()
    for process in pipeline.processes.values():
        process.terminate()
    took = {}
    for name, process in pipeline.processes.items():
        process.wait(120)
        took[name] = time.monotonic() - started
    return took


def test_sigterm_stops_every_service_in_time_with_nats_gone(pipeline: Pipeline) -> None:
    pipeline.start_all()
    wait_health(pipeline, is_healthy=True)
    pipeline.nats_server.stop()
    wait_health(pipeline, is_healthy=False)  # the health check a runtime calls turns bad
    took = terminate_all(pipeline)
    assert max(took.values()) <= health.SHUTDOWN_GRACE_SECONDS + 5, took
    record(
        Outcome(
            "SIGTERM with NATS gone",
            "NATS stopped, then SIGTERM to all four services",
            f"health turned bad; every service exited within {max(took.values()):.0f} s",
            "the health check turns bad; every service exits within its graceful timeout (40 s)",
        )
    )


def test_sigterm_stops_every_service_in_time_with_postgres_gone(tmp_path: Path) -> None:
    # In /tmp like the embedded runtime's: the server's own user must reach its data folder (pytest's is 0700).
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="syno-faults-pg-")) / "pg")
    server.start()
    pipeline = Pipeline(tmp_path / "run", server.dsn, MAPPING_DIR)
    try:
        pipeline.start_all()
        wait_health(pipeline, is_healthy=True)
        server.stop()
        wait_health(pipeline, is_healthy=False)
        took = terminate_all(pipeline)
    finally:
        pipeline.stop()
    assert max(took.values()) <= health.SHUTDOWN_GRACE_SECONDS + 5, took
    record(
        Outcome(
            "SIGTERM with PostgreSQL gone",
            "PostgreSQL stopped, then SIGTERM to all four services",
            f"health turned bad; every service exited within {max(took.values()):.0f} s",
            "the health check turns bad; every service exits within its graceful timeout (40 s)",
        )
    )


def test_a_killed_forecast_worker_replica_gives_its_batch_back(
    pipeline: Pipeline, clean_run: dict[str, Any], workbook: Path
) -> None:
    """Two forecast replicas share the work queue; the one that dies holding a batch loses nothing."""
    snapshot_id = file_sha256(workbook)
    pipeline.start_all()
    pipeline.start("forecast-2", fault="forecast.batch", module="syno_forecast")
    pipeline.drop(workbook)
    pipeline.wait_for(bus.ACTIVATION_COMPLETED, snapshot_id, timeout=RESTART_TO_DONE_SECONDS + 120)
    killed = pipeline.processes["forecast-2"].poll() == -9
    observed = check_outcome(pipeline, clean_run, snapshot_id, 0.0)
    record(
        Outcome(
            "forecast worker replica killed mid-batch",
            "a second forecast replica SIGKILLed when it takes a batch",
            f"{'the replica died holding a batch; ' if killed else 'the other replica took every batch; '}{observed}",
        )
    )
