"""What a run reports: marts.ready's quality facts, and the errors that stop a run (pure, no servers)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

import polars as pl

from syno_shared.events import (
    QualityGateResult,
    SheetLanded,
    SnapshotDelta,
    UnconvertibleValue,
    UnmappedValue,
    WorkbookLanded,
)
from syno_transform.cleaning import CleanResult
from syno_transform.dbt_runner import DbtBuild
from syno_transform.outcome import (
    breached_gates,
    build_failure,
    gates_failure,
    marts_ready,
    top_unconvertible,
    top_unmapped,
)
from syno_transform.schema import SALES_LINES_SCHEMA

ROWS = pl.Int64


def build(*, is_success: bool = True, tests_failed: int = 0, failed_nodes: tuple[str, ...] = ()) -> DbtBuild:
    return DbtBuild(
        is_success=is_success,
        invocation_id="inv-1",
        models_built=["model.syno.sellout_quarterly"],
        marts=["sellout_quarterly"],
        marts_schema="b_0123456789ab_cdef0123_marts",
        tests_passed=7,
        tests_warned=1,
        tests_failed=tests_failed,
        failed_nodes=list(failed_nodes),
        error=None,
        seconds=1.5,
    )


def gate(name: str, *, passed: bool, severity: Literal["warn", "error"] = "error") -> QualityGateResult:
    return QualityGateResult(name=name, severity=severity, passed=passed, detail=f"{name} detail")


def test_a_failing_dbt_test_stops_the_run_naming_the_failing_nodes() -> None:
    failure = build_failure(build(is_success=False, tests_failed=1, failed_nodes=("test.syno.not_null_x",)))

    assert failure is not None
    assert (failure.code, failure.message) == (
        "dbt_test_failed",
        "dbt build failed (1 tests failed): test.syno.not_null_x; nothing was published",
    )
    assert [error.code for error in [build_failure(build(is_success=False))] if error] == ["dbt_build_failed"]
    assert build_failure(build()) is None


def test_only_failed_gates_at_error_severity_stop_the_run() -> None:
    gates = [
        gate("row_count_delta", passed=True),
        gate("null_share", passed=False),
        gate("unmapped_share", passed=False, severity="warn"),
        gate("reconciliation", passed=False),
    ]

    breaches = breached_gates(gates)

    assert [breach.name for breach in breaches] == ["null_share", "reconciliation"]
    assert gates_failure(breaches).message == (
        "quality gates breached: null_share (null_share detail); reconciliation (reconciliation detail);"
        " nothing was published"
    )


def test_the_most_frequent_unmapped_values_first_a_blank_shown_as_blank() -> None:
    unmapped = pl.DataFrame(
        {
            "field": ["country", "country", "currency", "product", "product"],
            "value": ["Atlantis", None, "GBP", "GIZMO", "WIDGET"],
            "rows": [3, 9, 3, 1, 2],
        },
        schema_overrides={"rows": ROWS},
    )

    assert top_unmapped(unmapped, limit=4) == [
        UnmappedValue(field="country", value="(blank)", rows=9),
        UnmappedValue(field="country", value="Atlantis", rows=3),
        UnmappedValue(field="currency", value="GBP", rows=3),
        UnmappedValue(field="product", value="WIDGET", rows=2),
    ]


def test_the_most_frequent_unconvertible_cells_first_within_the_limit() -> None:
    unconvertible = pl.DataFrame(
        {
            "column": ["quantity", "invoice_date", "invoice_date"],
            "value": ["two", "31/02/2024", "soon"],
            "rows": [1, 5, 1],
        },
        schema_overrides={"rows": ROWS},
    )

    assert top_unconvertible(unconvertible, limit=2) == [
        UnconvertibleValue(column="invoice_date", value="31/02/2024", rows=5),
        UnconvertibleValue(column="invoice_date", value="soon", rows=1),
    ]


def test_marts_ready_names_the_build_and_carries_the_file_facts_and_the_snapshot_quality() -> None:
    """Where the snapshot's marts are (its build's schema) and whether people see them, beside the file's facts."""
    delta = SnapshotDelta(is_first=False, previous_snapshot_id="0" * 64, rows={"2024": 12})
    landed = WorkbookLanded(
        run_id="run-1",
        snapshot_id="1" * 64,
        produced_at=datetime(2024, 11, 12, tzinfo=UTC),
        file_name="sellout.xlsx",
        path="raw/sellout.xlsx",
        size_bytes=2048,
        delta=delta,
        sheets=[
            SheetLanded(name="2024", kind="hardware", year=2024, rows=3, columns=["PI"], parquet_path="p/2024.parquet")
        ],
        contract_version="1.0",
        mapping_versions={},
    )
    lines = pl.DataFrame(
        {"invoice_date": [date(2024, 9, 30), None, date(2024, 8, 1)]}, schema={"invoice_date": pl.Date}
    ).select(
        pl.col(name).cast(dtype) if name == "invoice_date" else pl.lit(None, dtype).alias(name)
        for name, dtype in SALES_LINES_SCHEMA.items()
    )
    cleaned = CleanResult(
        lines=lines,
        dropped={"blank": 0, "subtotal": 0, "repeated_header": 0},
        unmapped=pl.DataFrame({"field": ["currency"], "value": ["GBP"], "rows": [2]}, schema_overrides={"rows": ROWS}),
        unconvertible=pl.DataFrame(
            {"column": [], "value": [], "rows": []}, schema={"column": pl.String, "value": pl.String, "rows": ROWS}
        ),
    )
    gates = [gate("row_count_delta", passed=True)]

    ready = marts_ready(
        landed,
        build=build(),
        cleaned=cleaned,
        gates=gates,
        mart_rows={"marts.sellout_quarterly": 4},
        publication="kept_aside_older",
    )

    assert ready.model_dump(exclude={"produced_at"}) == {
        "schema_version": 2,
        "run_id": "run-1",
        "snapshot_id": "1" * 64,
        "marts_schema": "b_0123456789ab_cdef0123_marts",
        "is_published": False,
        "publication": "kept_aside_older",
        "dbt_invocation_id": "inv-1",
        "models_built": ["model.syno.sellout_quarterly"],
        "mart_rows": {"marts.sellout_quarterly": 4},
        "workbook": {
            "file_name": "sellout.xlsx",
            "size_bytes": 2048,
            "sheet_rows": {"2024": 3},
            "delta": delta.model_dump(),
        },
        "quality": {
            "rows_loaded": 3,
            "tests_passed": 7,
            "tests_warned": 1,
            "tests_failed": 0,
            "quality_gates": [gates[0].model_dump()],
            "unmapped_values": [{"field": "currency", "value": "GBP", "rows": 2}],
            "unconvertible_values": [],
        },
        # 2024-09-30 is the last day of Q3 2024, so Q3 is complete.
        "data_freshness": date(2024, 9, 30),
        "latest_complete_quarter": date(2024, 7, 1),
    }
