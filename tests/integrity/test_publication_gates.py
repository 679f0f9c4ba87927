"""A snapshot that fails a gate or a dbt test changes nothing people see, and says why; the next good one publishes.

The transform runs as its real app in this process (real NATS, PostgreSQL and dbt). Every published mart is
compared byte for byte (a hash of the whole table) before and after each failure, and the published numbers
are checked against the generator's own truth.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from integrity_support import (
    TransformApp,
    build_hashes,
    dbt_project_with_test,
    fetch_rows,
    land,
    landed_event,
    listening,
    quarterly_revenue,
    schemas_like,
    sellout_by_quarter,
    stable_hashes,
    write_sample,
)

from syno_shared import bus

pytestmark = pytest.mark.integration

MAPPING_DIR = Path(__file__).resolve().parents[2] / "data" / "mapping_table"
MORNING = datetime(2024, 11, 25, 8, tzinfo=UTC)
# The shipped mart tests hold for any workbook the cleaning accepts (that is their job), so this test adds one a
# workbook can break, at the level of a mart: the sell-out must not reach 2025.
NO_2025 = """-- Fails when marts.sellout_quarterly has a quarter of 2025.
select * from {{ ref('sellout_quarterly') }} where quarter >= date '2025-01-01'
"""


async def test_a_failed_gate_or_mart_test_leaves_every_published_mart_as_it_was(
    transform_app: TransformApp, nats_url: str, isolated_pg_dsn: str, data_dir: Path, tmp_path: Path
) -> None:
    project = dbt_project_with_test(tmp_path, "assert_no_sellout_in_2025", NO_2025)
    good, good_report = write_sample(tmp_path, MAPPING_DIR, seed=31, end_date=date(2024, 11, 5))
    # Newer data, but half the lines: the row-count gate (before dbt) stops it.
    halved, _ = write_sample(tmp_path, MAPPING_DIR, seed=32, end_date=date(2024, 11, 12), rows_per_year=1250)
    # Newer data and more lines, but sales in 2025: the mart-level test stops it after its build.
    into_2025, _ = write_sample(tmp_path, MAPPING_DIR, seed=33, end_date=date(2025, 1, 20), years=(2023, 2024, 2025))
    better, better_report = write_sample(tmp_path, MAPPING_DIR, seed=34, end_date=date(2024, 11, 20))
    events = [
        landed_event(workbook, data_dir, landed_at=MORNING + timedelta(minutes=step))
        for step, workbook in enumerate((good, halved, into_2025, better))
    ]

    async with transform_app(dbt_project_dir=project) as _, listening(nats_url) as log:
        await land(nats_url, events[0])
        first = await log.outcome(events[0].snapshot_id)
        assert (first["subject"], first["publication"], first["is_published"]) == (bus.MARTS_READY, "published", True)
        published = await stable_hashes(isolated_pg_dsn)
        assert published == await build_hashes(isolated_pg_dsn, first["marts_schema"])
        assert await sellout_by_quarter(isolated_pg_dsn) == pytest.approx(quarterly_revenue(good_report.truth))

        await land(nats_url, events[1])
        failed = await log.outcome(events[1].snapshot_id)
        assert (failed["subject"], failed["stage"], failed["reason_code"]) == (
            bus.PIPELINE_FAILED,
            "transform",
            "quality_gate_failed",
        )
        assert failed["message"].startswith("quality gates breached: row_count_delta (")
        assert await stable_hashes(isolated_pg_dsn) == published
        # The gate ran on the cleaned lines: nothing of the snapshot was built.
        builds = await fetch_rows(
            isolated_pg_dsn, "select build_id from ops.snapshot_builds where snapshot_id = $1", events[1].snapshot_id
        )
        assert builds == []

        await land(nats_url, events[2])
        failed = await log.outcome(events[2].snapshot_id)
        assert (failed["subject"], failed["reason_code"]) == (bus.PIPELINE_FAILED, "dbt_test_failed")
        assert "test.syno.assert_no_sellout_in_2025" in failed["message"]
        assert await stable_hashes(isolated_pg_dsn) == published
        # Built aside and kept for a look until the next run cleans up; marked failed, never published.
        (build,) = await fetch_rows(
            isolated_pg_dsn,
            "select build_id, status from ops.snapshot_builds where snapshot_id = $1",
            events[2].snapshot_id,
        )
        assert build["status"] == "failed"
        assert await schemas_like(isolated_pg_dsn, f"{build['build_id']}_%") == [
            f"{build['build_id']}_{layer}" for layer in ("intermediate", "marts", "staging")
        ]

        await land(nats_url, events[3])
        ready = await log.outcome(events[3].snapshot_id)
        assert (ready["subject"], ready["publication"]) == (bus.MARTS_READY, "published")
        assert await stable_hashes(isolated_pg_dsn) == await build_hashes(isolated_pg_dsn, ready["marts_schema"])
        assert await sellout_by_quarter(isolated_pg_dsn) == pytest.approx(quarterly_revenue(better_report.truth))
        assert await schemas_like(isolated_pg_dsn, f"{build['build_id']}_%") == []  # the failed build is gone

    publications = await fetch_rows(
        isolated_pg_dsn,
        "select snapshot_id, publication, previous_snapshot_id from ops.published_snapshot order by publication_id",
    )
    assert publications == [
        {"snapshot_id": events[0].snapshot_id, "publication": "published", "previous_snapshot_id": None},
        {
            "snapshot_id": events[3].snapshot_id,
            "publication": "published",
            "previous_snapshot_id": events[0].snapshot_id,
        },
    ]
    lineage = await fetch_rows(
        isolated_pg_dsn,
        "select model, rows, build_id from ops.lineage where run_id = $1 order by model",
        ready["run_id"],
    )
    expected_build = ready["marts_schema"].removesuffix("_marts")
    assert lineage == [
        {"model": model, "rows": rows, "build_id": expected_build} for model, rows in sorted(ready["mart_rows"].items())
    ]
