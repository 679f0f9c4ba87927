"""Quality gates (configured in quality.yml): pure functions over frames, no I/O."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import yaml

from syno_shared.events import QualityGateResult

DEFAULT_CONFIG = Path(__file__).with_name("quality.yml")


def load_gates(path: Path | None = None) -> list[dict[str, Any]]:
    config = yaml.safe_load((path or DEFAULT_CONFIG).read_text())
    gates: list[dict[str, Any]] = config["gates"]
    return gates


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


def run_quality_gates(
    gates: list[dict[str, Any]],
    *,
    lines: pl.DataFrame,
    previous_rows: int | None,
    mart_quarter_totals: pl.DataFrame,
) -> list[QualityGateResult]:
    results = []
    for gate in gates:
        name, severity = gate["name"], gate["severity"]
        if name == "row_count_delta":
            limit = float(gate["max_drop_share"])
            drop = 0.0 if not previous_rows else max(0.0, (previous_rows - lines.height) / previous_rows)
            results.append(
                QualityGateResult(
                    name=name,
                    severity=severity,
                    passed=drop <= limit,
                    observed=drop,
                    threshold=limit,
                    detail=f"{lines.height} rows now, {previous_rows if previous_rows is not None else 'no'} before",
                )
            )
        elif name == "null_share":
            limit = float(gate["max_share"])
            shares = lines.select(pl.col(gate["columns"]).null_count() / max(lines.height, 1)).row(0, named=True)
            worst = max(shares, key=shares.__getitem__)
            results.append(
                QualityGateResult(
                    name=name,
                    severity=severity,
                    passed=shares[worst] <= limit,
                    observed=shares[worst],
                    threshold=limit,
                    detail=f"worst column {worst}: {shares[worst]:.2%} null",
                )
            )
        elif name == "unmapped_share":
            limit = float(gate["max_share"])
            flags = pl.any_horizontal("is_country_unmapped", "is_currency_unmapped", "is_product_unmapped")
            share = float(lines.select(flags.mean()).item() or 0.0)
            results.append(
                QualityGateResult(
                    name=name,
                    severity=severity,
                    passed=share <= limit,
                    observed=share,
                    threshold=limit,
                    detail=f"{share:.3%} of rows have an unmapped country, currency or product",
                )
            )
        elif name == "reconciliation":
            limit = float(gate["tolerance_usd"])
            expected = cleaned_quarter_totals(lines)
            joined = expected.join(mart_quarter_totals, on="quarter", how="full", suffix="_mart", coalesce=True)
            gap = joined.select(
                (pl.col("revenue_usd").fill_null(0) - pl.col("revenue_usd_mart").fill_null(0)).abs().max()
            ).item()
            largest_gap = float(gap or 0.0)
            results.append(
                QualityGateResult(
                    name=name,
                    severity=severity,
                    passed=largest_gap <= limit,
                    observed=largest_gap,
                    threshold=limit,
                    detail=f"largest per-quarter gap between cleaned rows and marts: {largest_gap:.2f} USD",
                )
            )
        else:
            raise ValueError(f"unknown quality gate '{name}' in the quality configuration")
    return results
