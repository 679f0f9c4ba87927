"""Storyline rows: allocation of region forecasts, the activation score and the action rules."""

from __future__ import annotations

import polars as pl
from activation_samples import FORECAST, Q2, Q3, SNAPSHOT_SCHEMA, snapshot
from polars.testing import assert_frame_equal

from syno_activation.storylines import STORYLINE_SCHEMA, build_storylines


def test_storylines_allocate_forecasts_score_and_recommend() -> None:
    """Worked by hand:

    FR Q3 SVR-RM buyer: 200K actual of FR's 230K -> forecast 184K * 200/230 = 160K (-20%); 2 of 3
    customers are SVR-RM buyers without C2 (X = 2/3), QoQ +33% -> score 100*(0.25*2/3 + 0.20*0.20) = 20.7,
    cross-sell beats the forecast risk rule.
    FR Q3 Desktop only: forecast 24K (-20%) -> F = 0.2 -> 4.0; protect the pipeline (rule 4 before 5).
    DE Q3 Other: no DE forecast -> overall 250K * 15K/245K = 15306.12 (+2.0%); QoQ -50% (G = 0.5),
    1 dormant of 3 (D = 1/3) -> 100*(0.30*0.5 + 0.25/3) = 23.3; win back the declining accounts.
    Q2 rows: no forecast for Q3 and no Q1 to compare with.
    """
    result = build_storylines(snapshot(), FORECAST).collect()

    no_forecast_no_history = "No forecast for the next quarter. No prior-quarter revenue to compare."
    expected = pl.DataFrame(
        [
            (Q2, "DE", "Other", 30_000.0, None, None, 0.0, "Maintain cadence",
             f"{no_forecast_no_history} Only 2 customer(s): treat as anecdotal."),
            (Q2, "FR", "Desktop only", 20_000.0, None, None, 0.0, "Maintain cadence",
             f"{no_forecast_no_history} Only 1 customer(s): treat as anecdotal."),
            (Q2, "FR", "SVR-RM buyer", 150_000.0, None, None, 12.5, "Cross-sell C2 to SVR-RM buyers",
             f"{no_forecast_no_history} Only 2 customer(s): treat as anecdotal."),
            (Q3, "DE", "Other", 15_000.0, 15_306.12, 2.0, 23.3, "Win back declining accounts",
             "Overall forecast allocated by revenue share."),
            (Q3, "FR", "Desktop only", 30_000.0, 24_000.0, -20.0, 4.0, "Protect next-quarter pipeline",
             "Region forecast allocated by revenue share. Only 1 customer(s): treat as anecdotal."),
            (Q3, "FR", "SVR-RM buyer", 200_000.0, 160_000.0, -20.0, 20.7, "Cross-sell C2 to SVR-RM buyers",
             "Region forecast allocated by revenue share."),
        ],
        schema=STORYLINE_SCHEMA,
        orient="row",
    )  # fmt: skip
    assert_frame_equal(result, expected)


def test_growth_rules_and_dormant_majority() -> None:
    """Growing desktop buyers get the rackmount upsell, other growing segments expand, and a cell
    where half the customers are dormant is re-engaged whatever else happens."""
    rows = [
        (quarter, "US", name, segment, revenue, None, None, False, signal)
        for quarter, scale in ((Q2, 1.0), (Q3, 1.5))
        for name, segment, revenue, signal in (
            ("Hana", "Desktop only", 10_000.0 * scale, "growth"),
            ("Ivo", "C2 only", 8_000.0 * scale, "growth"),
        )
    ] + [
        (Q3, "JP", "Jun", "Other", 0.0, None, None, False, "dormant"),
        (Q3, "JP", "Kei", "Other", 5_000.0, None, None, False, "steady"),
    ]
    frame = pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA, orient="row")
    empty_forecast = FORECAST.clear()

    result = build_storylines(frame, empty_forecast).filter(pl.col("quarter") == Q3).collect()

    assert result.select("region", "segment", "activation_score", "recommended_action").rows() == [
        ("JP", "Other", 12.5, "Re-engage dormant accounts"),
        ("US", "C2 only", 0.0, "Expand with growing accounts"),
        ("US", "Desktop only", 0.0, "Upsell rackmount to growing desktop buyers"),
    ]


def test_empty_snapshot_gives_empty_storylines() -> None:
    result = build_storylines(pl.DataFrame(schema=SNAPSHOT_SCHEMA), FORECAST).collect()
    assert_frame_equal(result, pl.DataFrame(schema=STORYLINE_SCHEMA))
