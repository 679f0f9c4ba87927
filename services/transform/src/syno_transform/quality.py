"""Quality gates (configured in quality.yml): pure functions over frames, no I/O.

The gates that need only the cleaned lines (row-count delta, nulls, unmapped share) run before dbt, so a
bad snapshot stops before it is built; the ones that compare the build's marts with the lines run after.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import polars as pl
import yaml

from syno_shared.events import QualityGateResult

DEFAULT_CONFIG = Path(__file__).with_name("quality.yml")

Gate = dict[str, Any]


def load_gates(path: Path | None = None) -> list[Gate]:
    config = yaml.safe_load((path or DEFAULT_CONFIG).read_text())
    gates: list[Gate] = config["gates"]
    check_gates(gates)
    return gates


def check_gates(gates: list[Gate]) -> None:
    for gate in gates:
        if gate["name"] not in LINE_GATES and gate["name"] not in MART_GATES:
            raise ValueError(f"unknown quality gate '{gate['name']}' in the quality configuration")


def cleaned_quarter_totals(lines: pl.DataFrame) -> pl.DataFrame:
    """USD revenue per quarter from the cleaned rows, the reference the marts must reproduce."""
    return (
        lines.lazy()
        .filter(pl.col("invoice_date").is_not_null())
        .group_by(quarter=pl.col("invoice_date").dt.truncate("1q"))
        .agg(revenue_usd=pl.col("revenue_usd").sum())
        .sort("quarter")
        .collect()
    )


def row_count_delta(gate: Gate, lines: pl.DataFrame, previous_rows: int | None) -> QualityGateResult:
    limit = float(gate["max_drop_share"])
    drop = 0.0 if not previous_rows else max(0.0, (previous_rows - lines.height) / previous_rows)
    return QualityGateResult(
        name=gate["name"],
        severity=gate["severity"],
        passed=drop <= limit,
        observed=drop,
        threshold=limit,
        detail=f"{lines.height} rows now, {previous_rows if previous_rows is not None else 'no'} before",
    )


def null_share(gate: Gate, lines: pl.DataFrame, previous_rows: int | None) -> QualityGateResult:
    limit = float(gate["max_share"])
    shares = lines.select(pl.col(gate["columns"]).null_count() / max(lines.height, 1)).row(0, named=True)
    worst = max(shares, key=shares.__getitem__)
    return QualityGateResult(
        name=gate["name"],
        severity=gate["severity"],
        passed=shares[worst] <= limit,
        observed=shares[worst],
        threshold=limit,
        detail=f"worst column {worst}: {shares[worst]:.2%} null",
    )


def unmapped_share(gate: Gate, lines: pl.DataFrame, previous_rows: int | None) -> QualityGateResult:
    limit = float(gate["max_share"])
    flags = pl.any_horizontal("is_country_unmapped", "is_currency_unmapped", "is_product_unmapped")
    share = float(lines.select(flags.mean()).item() or 0.0)
    return QualityGateResult(
        name=gate["name"],
        severity=gate["severity"],
        passed=share <= limit,
        observed=share,
        threshold=limit,
        detail=f"{share:.3%} of rows have an unmapped country, currency or product",
    )


def reconciliation(gate: Gate, lines: pl.DataFrame, mart_quarter_totals: pl.DataFrame) -> QualityGateResult:
    limit = float(gate["tolerance_usd"])
    expected = cleaned_quarter_totals(lines)
    joined = expected.join(mart_quarter_totals, on="quarter", how="full", suffix="_mart", coalesce=True)
    gap = joined.select((pl.col("revenue_usd").fill_null(0) - pl.col("revenue_usd_mart").fill_null(0)).abs().max())
    largest_gap = float(gap.item() or 0.0)
    return QualityGateResult(
        name=gate["name"],
        severity=gate["severity"],
        passed=largest_gap <= limit,
        observed=largest_gap,
        threshold=limit,
        detail=f"largest per-quarter gap between cleaned rows and the build's marts: {largest_gap:.2f} USD",
    )


LINE_GATES: Final[dict[str, Callable[[Gate, pl.DataFrame, int | None], QualityGateResult]]] = {
    "row_count_delta": row_count_delta,
    "null_share": null_share,
    "unmapped_share": unmapped_share,
}
"""Gates over the cleaned lines alone (and the published snapshot's row count): run before dbt."""
MART_GATES: Final[dict[str, Callable[[Gate, pl.DataFrame, pl.DataFrame], QualityGateResult]]] = {
    "reconciliation": reconciliation,
}
"""Gates over the build's marts, against the cleaned lines: run after dbt, before publication."""


def run_line_gates(gates: list[Gate], *, lines: pl.DataFrame, previous_rows: int | None) -> list[QualityGateResult]:
    """The configured gates that need only the cleaned lines, in configuration order."""
    check_gates(gates)
    return [LINE_GATES[gate["name"]](gate, lines, previous_rows) for gate in gates if gate["name"] in LINE_GATES]


def run_mart_gates(
    gates: list[Gate], *, lines: pl.DataFrame, mart_quarter_totals: pl.DataFrame
) -> list[QualityGateResult]:
    """The configured gates that compare the build's marts with the cleaned lines, in configuration order."""
    return [MART_GATES[gate["name"]](gate, lines, mart_quarter_totals) for gate in gates if gate["name"] in MART_GATES]
