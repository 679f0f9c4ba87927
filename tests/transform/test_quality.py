"""Quality gates on small frames, with limits and results written out by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from syno_shared.events import QualityGateResult
from syno_transform.outcome import breached_gates
from syno_transform.quality import load_gates, run_line_gates, run_mart_gates

GATES = [
    {"name": "row_count_delta", "severity": "error", "max_drop_share": 0.10},
    {"name": "null_share", "severity": "error", "columns": ["customer", "quantity"], "max_share": 0.30},
    {"name": "unmapped_share", "severity": "warn", "max_share": 0.20},
    {"name": "reconciliation", "severity": "error", "tolerance_usd": 0.01},
]


def lines() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "invoice_date": [date(2024, 1, 5), date(2024, 2, 1), date(2024, 4, 2), None],
            "customer": ["A", None, "B", "C"],
            "quantity": [1, 2, 3, 4],
            "revenue_usd": [100.0, 50.0, 25.0, 7.0],
            "is_country_unmapped": [False, True, False, False],
            "is_currency_unmapped": [False, False, False, False],
            "is_product_unmapped": [False, False, False, True],
        }
    )


def marts(first_quarter: float) -> pl.DataFrame:
    return pl.DataFrame({"quarter": [date(2024, 1, 1), date(2024, 4, 1)], "revenue_usd": [first_quarter, 25.0]})


def by_name(results: list[QualityGateResult]) -> dict[str, QualityGateResult]:
    return {result.name: result for result in results}


def run_quality_gates(
    gates: list[dict[str, object]], *, lines: pl.DataFrame, previous_rows: int | None, mart_quarter_totals: pl.DataFrame
) -> list[QualityGateResult]:
    """Both phases, as a run that gets to publication does them: the lines' gates, then the build's."""
    return [
        *run_line_gates(gates, lines=lines, previous_rows=previous_rows),
        *run_mart_gates(gates, lines=lines, mart_quarter_totals=mart_quarter_totals),
    ]


def test_the_gates_over_the_lines_run_alone_before_any_mart_exists() -> None:
    """row_count_delta, null_share and unmapped_share need no build: they run (and can stop a run) before dbt;
    reconciliation is the build's gate."""
    before_dbt = run_line_gates(GATES, lines=lines(), previous_rows=8)
    after_dbt = run_mart_gates(GATES, lines=lines(), mart_quarter_totals=marts(150.0))

    assert [(gate.name, gate.passed) for gate in before_dbt] == [
        ("row_count_delta", False),  # 4 lines after 8: half of them gone
        ("null_share", True),
        ("unmapped_share", False),
    ]
    assert [(gate.name, gate.passed) for gate in after_dbt] == [("reconciliation", True)]


def test_each_gate_measures_its_share_or_gap_against_its_limit() -> None:
    results = by_name(run_quality_gates(GATES, lines=lines(), previous_rows=4, mart_quarter_totals=marts(150.0)))
    assert results["row_count_delta"].observed == 0.0 and results["row_count_delta"].passed
    assert results["null_share"].observed == 0.25 and results["null_share"].passed
    assert "customer" in results["null_share"].detail
    assert results["unmapped_share"].observed == 0.5 and not results["unmapped_share"].passed
    assert results["unmapped_share"].severity == "warn"
    assert results["reconciliation"].observed == 0.0 and results["reconciliation"].passed


def test_a_shrinking_snapshot_and_a_mart_gap_breach_their_gates() -> None:
    results = by_name(run_quality_gates(GATES, lines=lines(), previous_rows=8, mart_quarter_totals=marts(149.0)))
    assert results["row_count_delta"].observed == 0.5 and not results["row_count_delta"].passed
    assert results["reconciliation"].observed == pytest.approx(1.0) and not results["reconciliation"].passed


def test_first_snapshot_has_no_row_count_baseline() -> None:
    results = by_name(run_quality_gates(GATES, lines=lines(), previous_rows=None, mart_quarter_totals=marts(150.0)))
    assert results["row_count_delta"].passed and "no before" in results["row_count_delta"].detail


def test_unknown_gate_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown quality gate 'typo'"):
        run_line_gates([{"name": "typo", "severity": "error"}], lines=lines(), previous_rows=None)
    config = tmp_path / "quality.yml"
    config.write_text("gates:\n  - {name: typo, severity: error}\n")
    with pytest.raises(ValueError, match="unknown quality gate 'typo'"):
        load_gates(config)


def test_the_shipped_gates_hold_on_consistent_data_and_stop_a_mart_that_lost_a_dollar() -> None:
    """quality.yml as shipped: a clean snapshot of the same size passes every gate; marts one USD short of
    the cleaned total in a quarter breach the reconciliation gate, which stops the run."""
    clean_lines = lines().with_columns(
        pl.col("customer").fill_null("D"),
        pl.col("invoice_date").fill_null(date(2024, 4, 3)),
        pl.col("revenue_usd").alias("total_local"),
        pl.lit(value=False).alias("is_country_unmapped"),
        pl.lit(value=False).alias("is_product_unmapped"),
    )
    quarters = [date(2024, 1, 1), date(2024, 4, 1)]
    consistent = pl.DataFrame({"quarter": quarters, "revenue_usd": [100.0 + 50.0, 25.0 + 7.0]})
    short = pl.DataFrame({"quarter": quarters, "revenue_usd": [100.0 + 50.0 - 1.0, 25.0 + 7.0]})

    held = run_quality_gates(load_gates(), lines=clean_lines, previous_rows=4, mart_quarter_totals=consistent)
    breached = run_quality_gates(load_gates(), lines=clean_lines, previous_rows=4, mart_quarter_totals=short)

    assert [result.name for result in held if not result.passed] == []
    assert [(gate.name, gate.observed) for gate in breached_gates(breached)] == [("reconciliation", 1.0)]
