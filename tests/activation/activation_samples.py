"""Small activation-snapshot, forecast and C2 frames shared by the storyline, narrative, C2 and report tests."""

from __future__ import annotations

from datetime import date

import polars as pl

Q1, Q2, Q3, Q4 = date(2025, 1, 1), date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1)

SNAPSHOT_SCHEMA = {
    "quarter": pl.Date,
    "region": pl.String,
    "customer": pl.String,
    "segment": pl.String,
    "revenue_usd": pl.Float64,
    "qoq_change": pl.Float64,
    "yoy_change": pl.Float64,
    "has_c2": pl.Boolean,
    "signal": pl.String,
}


def snapshot() -> pl.DataFrame:
    return pl.DataFrame(
        [
            (Q2, "FR", "Acme", "SVR-RM buyer", 100_000.0, None, None, False, "cross-sell C2"),
            (Q2, "FR", "Beta", "SVR-RM buyer", 50_000.0, None, None, True, "steady"),
            (Q2, "FR", "Cielo", "Desktop only", 20_000.0, None, None, False, "steady"),
            (Q2, "DE", "Fjord", "Other", 20_000.0, None, None, False, "steady"),
            (Q2, "DE", "Gala", "Other", 10_000.0, None, None, False, "steady"),
            (Q3, "FR", "Acme", "SVR-RM buyer", 120_000.0, 0.2, None, False, "growth"),
            (Q3, "FR", "Beta", "SVR-RM buyer", 30_000.0, -0.4, None, True, "decline"),
            (Q3, "FR", "Dune", "SVR-RM buyer", 50_000.0, None, None, False, "new"),
            (Q3, "FR", "Cielo", "Desktop only", 30_000.0, 0.5, None, False, "growth"),
            (Q3, "DE", "Edda", "Other", 0.0, None, None, False, "dormant"),
            (Q3, "DE", "Fjord", "Other", 10_000.0, -0.5, None, False, "decline"),
            (Q3, "DE", "Gala", "Other", 5_000.0, -0.5, None, False, "decline"),
        ],
        schema=SNAPSHOT_SCHEMA,
        orient="row",
    )


FORECAST = pl.DataFrame(
    {"target_quarter": [Q4, Q4], "region": ["FR", "overall"], "forecast_revenue": [184_000.0, 250_000.0]}
)


SCORECARD_COLUMNS = [
    "month", "quarter", "c2_service_family", "c2_plan", "region", "customer_tier",
    "active_customers", "new_orders", "revenue_usd", "quantity", "avg_seats",
]  # fmt: skip


def c2_scorecard() -> pl.DataFrame:
    """C2 revenue: Q2 Backup/FR 20K, Storage/DE 70K; Q3 Backup/FR 30K, Storage/DE 60K, Storage/FR 10K."""

    def row(month: date, family: str, region: str, revenue: float) -> tuple[object, ...]:
        quarter = date(month.year, (month.month - 1) // 3 * 3 + 1, 1)
        return (month, quarter, family, "Advanced", region, "Top 5", 1, 1, revenue, 1, 1.0)

    return pl.DataFrame(
        [
            row(date(2025, 4, 1), "Backup", "FR", 10_000.0),
            row(date(2025, 5, 1), "Backup", "FR", 10_000.0),
            row(date(2025, 4, 1), "Storage", "DE", 70_000.0),
            row(date(2025, 7, 1), "Backup", "FR", 15_000.0),
            row(date(2025, 8, 1), "Backup", "FR", 15_000.0),
            row(date(2025, 7, 1), "Storage", "DE", 60_000.0),
            row(date(2025, 9, 1), "Storage", "FR", 10_000.0),
        ],
        schema=SCORECARD_COLUMNS,
        orient="row",
    )


SVR_RM_CUSTOMERS = pl.DataFrame(
    {
        "quarter": [Q2, Q2, Q3, Q3, Q3, Q3, Q3],
        "region": ["FR", "DE", "FR", "FR", "DE", "DE", "FR"],
        "customer": ["A", "B", "A", "C", "B", "D", "E"],
    }
)
C2_CUSTOMERS = pl.DataFrame({"quarter": [Q1, Q2, Q2, Q3, Q3, Q3], "customer": ["X", "A", "Z", "A", "C", "X"]})
