"""Small activation-snapshot, forecast and C2 frames shared by the storyline, narrative, C2 and report tests,
and `inputs`, which makes ActivationInputs of them (empty frames of the read's schemas where a test gives none)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from syno_activation import warehouse
from syno_activation.inputs import ActivationInputs

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


def snapshot_rows(rows: Sequence[tuple[object, ...]]) -> pl.DataFrame:
    """Rows of (quarter, region, customer, segment, revenue_usd, qoq_change, yoy_change, has_c2, signal)."""
    return pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA, orient="row")


def svr_rm_rows(rows: Sequence[tuple[object, ...]]) -> pl.DataFrame:
    """marts.svr_rm_customer_quarterly rows: (quarter, customer, tier, quantity, revenue_usd)."""
    return pl.DataFrame(rows, schema=warehouse.SVR_RM_REVENUE_SCHEMA, orient="row")


def _frame(frame: pl.DataFrame | None, schema: dict[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    """`frame` with every column of `schema` (null where it has none), or an empty frame of it."""
    if frame is None:
        return pl.DataFrame(schema=schema)
    missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in schema.items() if name not in frame.columns]
    return frame.with_columns(missing).select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def inputs(
    snapshot_frame: pl.DataFrame,
    *,
    region_forecasts: pl.DataFrame | None = None,
    customer_forecasts: pl.DataFrame | None = None,
    c2_scorecard_frame: pl.DataFrame | None = None,
    svr_rm_customers: pl.DataFrame | None = None,
    c2_customers: pl.DataFrame | None = None,
    svr_rm_revenue: pl.DataFrame | None = None,
) -> ActivationInputs:
    """What `warehouse.fetch_inputs` would read: the given frames, the mart's optional columns and forecast
    intervals null where a frame has none, empty frames where none is given."""
    return ActivationInputs(
        snapshot=_frame(snapshot_frame, warehouse.ACTIVATION_SNAPSHOT_SCHEMA),
        region_forecasts=_frame(region_forecasts, warehouse.REGION_FORECASTS_SCHEMA),
        customer_forecasts=_frame(customer_forecasts, warehouse.CUSTOMER_FORECASTS_SCHEMA),
        c2_scorecard=_frame(c2_scorecard_frame, warehouse.C2_SCORECARD_SCHEMA),
        svr_rm_customers=_frame(svr_rm_customers, warehouse.SVR_RM_CUSTOMERS_SCHEMA),
        c2_customers=_frame(c2_customers, warehouse.C2_CUSTOMERS_SCHEMA),
        svr_rm_revenue=_frame(svr_rm_revenue, warehouse.SVR_RM_REVENUE_SCHEMA),
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
