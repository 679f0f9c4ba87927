"""What a transform run reports: marts.ready with its quality facts, or why the run stops. Pure functions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Final

import polars as pl

from syno_shared import events
from syno_shared.errors import QualityGateFailed
from syno_shared.events import (
    PUBLISHED,
    MartsReady,
    Publication,
    QualityFacts,
    QualityGateResult,
    UnconvertibleValue,
    UnmappedValue,
    WorkbookLanded,
)
from syno_shared.quarters import latest_complete_quarter
from syno_transform.cleaning import CleanResult
from syno_transform.dbt_runner import DbtBuild

TOP_VALUES: Final = 20  # unmapped values and unconvertible cells carried on marts.ready (all are in ops)
BLANK: Final = "(blank)"  # how an empty cell is shown among the unmapped values


def build_failure(build: DbtBuild) -> QualityGateFailed | None:
    """The error that stops the run when `dbt build` failed (a failing test or a model that did not build)."""
    if build.is_success:
        return None
    failing = ", ".join(build.failed_nodes) or build.error or "unknown"
    return QualityGateFailed(
        f"dbt build failed ({build.tests_failed} tests failed): {failing}; nothing was published",
        code="dbt_test_failed" if build.tests_failed else "dbt_build_failed",
    )


def breached_gates(gates: Sequence[QualityGateResult]) -> list[QualityGateResult]:
    """The gates that failed at severity 'error': any one of them stops the run."""
    return [gate for gate in gates if not gate.passed and gate.severity == "error"]


def gates_failure(breaches: Sequence[QualityGateResult]) -> QualityGateFailed:
    return QualityGateFailed(
        "quality gates breached: "
        + "; ".join(f"{gate.name} ({gate.detail})" for gate in breaches)
        + "; nothing was published",
        code="quality_gate_failed",
    )


def top_unmapped(unmapped: pl.DataFrame, limit: int = TOP_VALUES) -> list[UnmappedValue]:
    """The `limit` unmapped values on most rows (ties: field, then value), a blank cell shown as BLANK."""
    return [
        UnmappedValue(field=field, value=BLANK if value is None else value, rows=rows)
        for field, value, rows in _most_rows(unmapped, "field", limit).iter_rows()
    ]


def top_unconvertible(unconvertible: pl.DataFrame, limit: int = TOP_VALUES) -> list[UnconvertibleValue]:
    """The `limit` unconvertible cells on most rows (ties: column, then value)."""
    return [
        UnconvertibleValue(column=column, value=value, rows=rows)
        for column, value, rows in _most_rows(unconvertible, "column", limit).iter_rows()
    ]


def _most_rows(counts: pl.DataFrame, key: str, limit: int) -> pl.DataFrame:
    return (
        counts.sort(["rows", key, "value"], descending=[True, False, False], nulls_last=True)
        .head(limit)
        .select(key, "value", "rows")
    )


def data_freshness(lines: pl.DataFrame) -> date | None:
    """The snapshot's latest invoice date: how recent its data is."""
    latest: date | None = lines.select(pl.col("invoice_date").max()).item()
    return latest


def marts_ready(
    landed: WorkbookLanded,
    *,
    build: DbtBuild,
    cleaned: CleanResult,
    gates: Sequence[QualityGateResult],
    mart_rows: dict[str, int],
    publication: Publication,
) -> MartsReady:
    """marts.ready of the run: where the snapshot's marts are and whether people see them, the build, the marts'
    rows, the file's facts and the snapshot's quality."""
    freshness = data_freshness(cleaned.lines)
    return MartsReady(
        run_id=landed.run_id,
        snapshot_id=landed.snapshot_id,
        marts_schema=build.marts_schema,
        is_published=publication in PUBLISHED,
        publication=publication,
        dbt_invocation_id=build.invocation_id,
        models_built=build.models_built,
        mart_rows=mart_rows,
        workbook=events.workbook_facts(landed),
        quality=QualityFacts(
            rows_loaded=cleaned.lines.height,
            tests_passed=build.tests_passed,
            tests_warned=build.tests_warned,
            tests_failed=build.tests_failed,
            quality_gates=list(gates),
            unmapped_values=top_unmapped(cleaned.unmapped),
            unconvertible_values=top_unconvertible(cleaned.unconvertible),
        ),
        data_freshness=freshness,
        latest_complete_quarter=latest_complete_quarter(freshness),
    )
