"""Small activation-snapshot and forecast frames shared by the storyline and narrative tests."""

from __future__ import annotations

from datetime import date

import polars as pl

Q2, Q3, Q4 = date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1)

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
