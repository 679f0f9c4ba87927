"""Builds and publication as rules (no servers): build names, which snapshot wins, which builds are kept."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from syno_transform.snapshots import (
    KeptBuild,
    SnapshotAge,
    build_schema,
    builds_to_drop,
    new_build_id,
    publication,
)

SHA = "8ca0839f0a8beab480cf784d61d7edd8826ea2f3f7fc93383ac75e82d56062b4"
NOON = datetime(2024, 11, 20, 12, tzinfo=UTC)


def test_a_build_is_named_after_its_snapshot_and_gets_schemas_of_its_own() -> None:
    build_id = new_build_id(SHA, token="cdef0123" + "9" * 24)

    assert build_id == "b_8ca0839f0a8b_cdef0123"
    assert [build_schema(build_id, layer) for layer in ("staging", "intermediate", "marts")] == [
        "b_8ca0839f0a8b_cdef0123_staging",
        "b_8ca0839f0a8b_cdef0123_intermediate",
        "b_8ca0839f0a8b_cdef0123_marts",
    ]


def test_the_same_snapshot_built_twice_gets_two_builds() -> None:
    """A rebuild never writes into the schemas the published views may be reading."""
    first, second = new_build_id(SHA), new_build_id(SHA)

    assert first != second and first[:15] == second[:15] == "b_8ca0839f0a8b_"


def test_a_snapshot_id_that_is_not_a_sha256_still_gives_a_valid_build_name() -> None:
    build_id = new_build_id("Forecast-Test-Snapshot", token="00000000")

    assert build_schema(build_id) == f"{build_id}_marts"
    assert build_id == new_build_id("Forecast-Test-Snapshot", token="00000000")


def test_a_schema_name_that_is_not_a_build_is_refused() -> None:
    with pytest.raises(ValueError, match="not a build schema"):
        build_schema("marts; drop schema ops", "marts")
    with pytest.raises(ValueError, match="not a build schema"):
        build_schema("b_8ca0839f0a8b_cdef0123", "raw")


@pytest.mark.parametrize(
    ("candidate", "is_forced", "expected"),
    [
        (SnapshotAge(date(2024, 11, 21), NOON - timedelta(days=3)), False, "published"),  # later invoices
        (SnapshotAge(date(2024, 11, 20), NOON + timedelta(seconds=1)), False, "published"),  # same data, landed later
        (SnapshotAge(date(2024, 11, 20), NOON), False, "published"),  # the published one again
        (SnapshotAge(date(2024, 11, 19), NOON + timedelta(days=3)), False, "kept_aside_older"),  # landed later, older
        (SnapshotAge(date(2024, 11, 20), NOON - timedelta(seconds=1)), False, "kept_aside_older"),
        (SnapshotAge(None, NOON + timedelta(days=1)), False, "kept_aside_older"),  # no invoice date at all
        (SnapshotAge(date(2024, 11, 19), NOON), True, "published_forced"),
        (SnapshotAge(date(2024, 11, 21), NOON), True, "published"),  # forced, but newer anyway
    ],
)
def test_newest_data_wins_by_latest_invoice_then_landing_time(
    candidate: SnapshotAge, is_forced: bool, expected: str
) -> None:
    published = SnapshotAge(date(2024, 11, 20), NOON)

    assert publication(candidate, published, is_forced=is_forced) == expected


def test_the_first_snapshot_is_published() -> None:
    assert publication(SnapshotAge(None, NOON), None, is_forced=False) == "published"


def test_a_rehearsal_is_never_published_however_new_or_forced() -> None:
    newer = SnapshotAge(date(2030, 1, 1), NOON)
    for published in (None, SnapshotAge(date(2024, 11, 20), NOON)):
        for is_forced in (False, True):
            assert publication(newer, published, is_forced=is_forced, is_rehearsal=True) == "rehearsal"


def test_retention_keeps_the_published_build_the_last_published_and_the_last_passed() -> None:
    """keep=2: of six builds, the published one, the two last published and the two last passed stay."""
    hour = timedelta(hours=1)
    builds = [
        KeptBuild("b_000000000001_00000001", passed_at=NOON, last_published_at=NOON),  # published longest ago
        KeptBuild("b_000000000002_00000002", passed_at=NOON + hour, last_published_at=NOON + 4 * hour),
        KeptBuild("b_000000000003_00000003", passed_at=NOON + 2 * hour, last_published_at=None),  # kept aside
        KeptBuild("b_000000000004_00000004", passed_at=None, last_published_at=None),  # failed
        KeptBuild("b_000000000005_00000005", passed_at=NOON + 3 * hour, last_published_at=NOON + 5 * hour),
        KeptBuild("b_000000000006_00000006", passed_at=NOON + 6 * hour, last_published_at=None),  # kept aside, newest
    ]

    dropped = builds_to_drop(builds, published="b_000000000001_00000001", keep=2)  # rolled back to the first

    # kept: 1 (published), 5 and 2 (last published), 6 and 5 (last passed); 3 is the third pass, 4 failed.
    assert dropped == ["b_000000000003_00000003", "b_000000000004_00000004"]


def test_retention_of_one_keeps_only_the_published_and_the_last_passed() -> None:
    builds = [
        KeptBuild("b_000000000001_00000001", passed_at=NOON, last_published_at=NOON),
        KeptBuild("b_000000000002_00000002", passed_at=NOON + timedelta(hours=1), last_published_at=None),
    ]

    assert builds_to_drop(builds, published="b_000000000001_00000001", keep=1) == []
    assert builds_to_drop(builds, published=None, keep=1) == []
    assert builds_to_drop([*builds[:1]], published=None, keep=1) == []
