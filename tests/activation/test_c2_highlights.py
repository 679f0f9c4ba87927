"""C2 highlights: movers by service family and region, attach rate among SVR-RM customers, customer flow."""

from __future__ import annotations

import polars as pl
from activation_samples import C2_CUSTOMERS, Q2, Q3, SCORECARD_COLUMNS, SVR_RM_CUSTOMERS, c2_scorecard
from polars.testing import assert_frame_equal

from syno_activation.c2_highlights import attach_rate, customer_changes, largest_movers, summarize_c2


def test_largest_movers_by_service_family_and_region() -> None:
    """Storage's two regions cancel out (70K -> 70K), so it is not a mover at all."""
    by_family = largest_movers(c2_scorecard(), by="c2_service_family")
    assert_frame_equal(
        by_family,
        pl.DataFrame(
            {
                "c2_service_family": ["Backup"],
                "quarter": [Q3],
                "revenue_usd": [30_000.0],
                "previous_revenue_usd": [20_000.0],
                "change_usd": [10_000.0],
                "change_pct": [0.5],
            }
        ),
    )
    by_region = largest_movers(c2_scorecard(), by="region", top_n=5)
    assert by_region.select("region", "change_usd", "change_pct").rows() == [
        ("FR", 20_000.0, 1.0),
        ("DE", -10_000.0, 60_000.0 / 70_000.0 - 1.0),
    ]


def test_attach_rate_per_region_and_overall() -> None:
    assert attach_rate(SVR_RM_CUSTOMERS, C2_CUSTOMERS).rows() == [
        (Q2, "DE", 1, 0, 0.0),
        (Q2, "FR", 1, 1, 1.0),
        (Q2, "overall", 2, 1, 0.5),
        (Q3, "DE", 2, 0, 0.0),
        (Q3, "FR", 3, 2, 2 / 3),
        (Q3, "overall", 5, 2, 0.4),
    ]


def test_new_returning_and_lost_c2_customers() -> None:
    """C is new, X comes back after a quarter away, Z stopped after Q2; A stays and is not listed."""
    assert customer_changes(C2_CUSTOMERS, Q3).rows() == [("Z", "lost"), ("C", "new"), ("X", "returning")]


def test_summary_lines() -> None:
    highlights = summarize_c2(c2_scorecard(), SVR_RM_CUSTOMERS, C2_CUSTOMERS)
    assert highlights is not None
    assert highlights.lines == (
        "C2 revenue in Q3 2025: $100.0K (QoQ +11.1%).",
        "Largest movers by service family: Backup +$10.0K (+50.0%).",
        "Largest movers by region: FR +$20.0K (+100.0%), DE -$10.0K (-14.3%).",
        "C2 attach rate among SVR-RM customers: 40.0% (2 of 5), -10.0 pts QoQ.",
        "C2 customers: 3 active, 1 new, 1 returning, 1 lost.",
    )
    assert (highlights.svr_rm_customers, highlights.svr_rm_with_c2, highlights.attach_rate) == (5, 2, 0.4)
    assert (highlights.new_customers, highlights.returning_customers, highlights.lost_customers) == (1, 1, 1)


def test_no_scorecard_no_highlights() -> None:
    empty = pl.DataFrame(schema=dict.fromkeys(SCORECARD_COLUMNS, pl.String)).with_columns(
        pl.col("quarter").cast(pl.Date)
    )
    assert summarize_c2(empty, SVR_RM_CUSTOMERS, C2_CUSTOMERS) is None
