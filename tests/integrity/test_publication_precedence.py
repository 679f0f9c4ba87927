"""Newest data wins; an older snapshot is published only when an operator asks (a forced replay, `syno publish`).

The transform runs as its real app in this process (real NATS, PostgreSQL and dbt); replays go through the
project's own `replay` code and rollbacks through the `syno publish` command, as an operator would run them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from integrity_support import (
    TransformApp,
    build_hashes,
    fetch_rows,
    land,
    landed_event,
    last_sequence,
    listening,
    quarterly_revenue,
    schemas_like,
    sellout_by_quarter,
    stable_hashes,
    wait_until_handled,
    write_sample,
)

from syno_cli import replay as replays
from syno_shared import bus

pytestmark = pytest.mark.integration

MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"
MORNING = datetime(2024, 11, 25, 8, tzinfo=UTC)


async def syno(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The `syno` command as an operator runs it, against this test's database."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "syno_cli", *args],
        env={**os.environ, "SYNO_PG_DSN": dsn},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def published_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_an_older_snapshot_is_kept_aside_unless_forced_and_a_rollback_publishes_a_kept_build(
    transform_app: TransformApp, nats_url: str, isolated_pg_dsn: str, data_dir: Path, tmp_path: Path
) -> None:
    older, older_report = write_sample(tmp_path, MAPPING_DIR, seed=41, end_date=date(2024, 10, 20))
    newer, newer_report = write_sample(tmp_path, MAPPING_DIR, seed=42, end_date=date(2024, 11, 20))
    # The newer export lands first; the older one a minute later (its data is still older).
    newer_event = landed_event(newer, data_dir, landed_at=MORNING)
    older_event = landed_event(older, data_dir, landed_at=MORNING + timedelta(minutes=1))

    async with transform_app() as settings, listening(nats_url) as log:
        await land(nats_url, newer_event)
        newer_ready = await log.outcome(newer_event.snapshot_id)
        assert newer_ready["publication"] == "published"
        newer_hashes = await stable_hashes(isolated_pg_dsn)

        await land(nats_url, older_event)
        kept = await log.outcome(older_event.snapshot_id)
        assert (kept["subject"], kept["publication"], kept["is_published"]) == (
            bus.MARTS_READY,
            "kept_aside_older",
            False,
        )
        assert await stable_hashes(isolated_pg_dsn) == newer_hashes
        # Built and checked all the same: its own marts hold its own numbers, for the stages downstream.
        assert kept["marts_schema"] != newer_ready["marts_schema"]
        assert await sellout_by_quarter(isolated_pg_dsn, kept["marts_schema"]) == pytest.approx(
            quarterly_revenue(older_report.truth)
        )

        # `syno replay` without --force: the snapshot was done, nothing is rebuilt, the newer one stays.
        await replays.replay(
            nats_url, settings.stream_name, bus.WORKBOOK_LANDED, snapshot_id=older_event.snapshot_id, is_forced=False
        )
        await wait_until_handled(nats_url, await last_sequence(nats_url, bus.WORKBOOK_LANDED), "syno-transform")
        assert await stable_hashes(isolated_pg_dsn) == newer_hashes
        kept_body = {key: value for key, value in kept.items() if key != "subject"}
        assert all(body == kept_body for body in log.of(bus.MARTS_READY, older_event.snapshot_id))  # told again
        builds = "select count(*) as n from ops.snapshot_builds where snapshot_id = $1"
        assert await fetch_rows(isolated_pg_dsn, builds, older_event.snapshot_id) == [{"n": 1}]

        # `syno replay --force`: the operator asked, the older snapshot is published.
        await replays.replay(
            nats_url, settings.stream_name, bus.WORKBOOK_LANDED, snapshot_id=older_event.snapshot_id, is_forced=True
        )

        def older_ready() -> list[dict[str, Any]]:
            return log.of(bus.MARTS_READY, older_event.snapshot_id)

        await log.wait_for(lambda: any(body["publication"] != "kept_aside_older" for body in older_ready()))
        (forced,) = [
            {"subject": bus.MARTS_READY, **body} for body in older_ready() if body["publication"] != "kept_aside_older"
        ]
        assert (forced["subject"], forced["publication"], forced["is_published"]) == (
            bus.MARTS_READY,
            "published_forced",
            True,
        )
        (forced_headers,) = [
            headers for subject, headers, body in log.events if body.get("publication") == "published_forced"
        ]
        assert bus.FORCE_HEADER in forced_headers  # the replay's force travels on downstream
        assert await stable_hashes(isolated_pg_dsn) == await build_hashes(isolated_pg_dsn, forced["marts_schema"])
        assert await sellout_by_quarter(isolated_pg_dsn) == pytest.approx(quarterly_revenue(older_report.truth))

    # An operator rolls back to the newer snapshot's build (kept: the last three published stay).
    listed = published_json(await syno(isolated_pg_dsn, "publish", "--json"))
    assert [(row["snapshot_id"], row["is_published"]) for row in listed] == [
        (older_event.snapshot_id, True),  # the forced build, newest first
        (older_event.snapshot_id, False),  # the build kept aside
        (newer_event.snapshot_id, False),
    ]
    rolled = published_json(await syno(isolated_pg_dsn, "publish", newer_event.snapshot_id[:12], "--json"))
    assert (rolled["snapshot_id"], rolled["previous_snapshot_id"]) == (newer_event.snapshot_id, older_event.snapshot_id)
    assert await stable_hashes(isolated_pg_dsn) == newer_hashes
    assert await sellout_by_quarter(isolated_pg_dsn) == pytest.approx(quarterly_revenue(newer_report.truth))

    publications = await fetch_rows(
        isolated_pg_dsn,
        "select snapshot_id, run_id, publication, previous_snapshot_id from ops.published_snapshot"
        " order by publication_id",
    )
    assert publications == [
        {
            "snapshot_id": newer_event.snapshot_id,
            "run_id": newer_event.run_id,
            "publication": "published",
            "previous_snapshot_id": None,
        },
        {
            "snapshot_id": older_event.snapshot_id,
            "run_id": older_event.run_id,
            "publication": "published_forced",
            "previous_snapshot_id": newer_event.snapshot_id,
        },
        {
            "snapshot_id": newer_event.snapshot_id,
            "run_id": newer_event.run_id,
            "publication": "rollback",
            "previous_snapshot_id": older_event.snapshot_id,
        },
    ]


async def test_builds_beyond_the_kept_ones_are_dropped_and_cannot_be_published(
    transform_app: TransformApp, nats_url: str, isolated_pg_dsn: str, data_dir: Path, tmp_path: Path
) -> None:
    """With one build kept, the second publication drops the first build's schemas; `syno publish` of it fails."""
    first, _ = write_sample(tmp_path, MAPPING_DIR, seed=43, end_date=date(2024, 11, 5))
    second, _ = write_sample(tmp_path, MAPPING_DIR, seed=44, end_date=date(2024, 11, 20))
    events = [landed_event(first, data_dir, landed_at=MORNING), landed_event(second, data_dir, landed_at=MORNING)]

    async with transform_app(published_snapshots_kept=1), listening(nats_url) as log:
        await land(nats_url, events[0])
        first_ready = await log.outcome(events[0].snapshot_id)
        await land(nats_url, events[1])
        second_ready = await log.outcome(events[1].snapshot_id)

    first_build = first_ready["marts_schema"].removesuffix("_marts")
    second_build = second_ready["marts_schema"].removesuffix("_marts")
    assert await schemas_like(isolated_pg_dsn, "b\\_%") == [
        f"{second_build}_{layer}" for layer in ("intermediate", "marts", "staging")
    ]
    builds = await fetch_rows(
        isolated_pg_dsn, "select build_id, dropped_at is not null as is_dropped from ops.snapshot_builds order by 1"
    )
    assert sorted((row["build_id"], row["is_dropped"]) for row in builds) == sorted(
        [(first_build, True), (second_build, False)]
    )
    refused = await syno(isolated_pg_dsn, "publish", events[0].snapshot_id)
    assert refused.returncode == 1 and "build_not_kept" in refused.stderr
    assert await stable_hashes(isolated_pg_dsn) == await build_hashes(isolated_pg_dsn, second_ready["marts_schema"])
