"""The frames activation reads for one snapshot (column names and types in `warehouse`)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True, slots=True)
class ActivationInputs:
    """snapshot: marts.commercial_activation_snapshot (one row per quarter, region and customer; `country` and
    `last_order_date` are null until the mart carries them); region_forecasts: forecast.sellout revenue per region
    (target_quarter, region, forecast_revenue, lower_80, upper_80); customer_forecasts: forecast.svr_rm revenue
    per top customer (target_quarter, customer, forecast_revenue, lower_80, upper_80); c2_scorecard:
    marts.c2_adoption_scorecard (month, quarter, c2_service_family, c2_plan, region, active_customers,
    revenue_usd); svr_rm_customers: (quarter, region, customer) buying SVR-RM; c2_customers: (quarter, customer)
    with C2; svr_rm_revenue: marts.svr_rm_customer_quarterly (quarter, customer, tier, quantity, revenue_usd).
    """

    snapshot: pl.DataFrame
    region_forecasts: pl.DataFrame
    customer_forecasts: pl.DataFrame
    c2_scorecard: pl.DataFrame
    svr_rm_customers: pl.DataFrame
    c2_customers: pl.DataFrame
    svr_rm_revenue: pl.DataFrame
