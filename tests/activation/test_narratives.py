"""Narratives: number formatting and the exact words per region and per top customer."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from activation_samples import FORECAST, Q2, Q3, SNAPSHOT_SCHEMA, snapshot

from syno_activation.narratives import (
    Narrative,
    customer_narratives,
    format_pct,
    format_usd,
    narratives_frame,
    region_narratives,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1_234_567.0, "$1.2M"),
        (350_000.0, "$350.0K"),
        (999_950.0, "$1.0M"),
        (999.6, "$1.0K"),
        (950.0, "$950"),
        (0.0, "$0"),
        (-1_250_000.0, "-$1.2M"),
        (2_500_000_000.0, "$2.5B"),
        (None, "n/a"),
    ],
)
def test_format_usd(value: float | None, text: str) -> None:
    assert format_usd(value) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(0.125, "+12.5%"), (-0.03, "-3.0%"), (0.0, "0.0%"), (-0.00001, "0.0%"), (1.0, "+100.0%"), (None, "n/a")],
)
def test_format_pct(fraction: float | None, text: str) -> None:
    assert format_pct(fraction) == text


def test_region_narratives_name_dormant_cross_sell_and_forecast_risk() -> None:
    assert region_narratives(snapshot(), FORECAST) == [
        Narrative(
            "region",
            "DE",
            Q3,
            "DE in Q3 2025: revenue $15.0K (QoQ -50.0%, YoY n/a) from 2 active customers. "
            "Accounts: 0 growing, 2 declining, 1 dormant, 0 new. Re-engage dormant: Edda. "
            "No forecast for Q4 2025.",
            region="DE",
        ),
        Narrative(
            "region",
            "FR",
            Q3,
            "FR in Q3 2025: revenue $230.0K (QoQ +35.3%, YoY n/a) from 4 active customers. "
            "Accounts: 2 growing, 1 declining, 0 dormant, 1 new. "
            "Cross-sell: 2 SVR-RM buyers without C2 (Acme, Dune). "
            "Next quarter (Q4 2025) forecast $184.0K (-20.0% vs Q3 2025): forecast risk.",
            region="FR",
        ),
    ]


def test_region_narrative_for_an_earlier_quarter_without_forecast() -> None:
    [de, fr] = region_narratives(snapshot(), FORECAST, quarter=Q2)
    assert fr.text == (
        "FR in Q2 2025: revenue $170.0K (QoQ n/a, YoY n/a) from 3 active customers. "
        "Accounts: 0 growing, 0 declining, 0 dormant, 0 new. "
        "Cross-sell: 1 SVR-RM buyer without C2 (Acme). No forecast for Q3 2025."
    )
    assert de.subject == "DE"


def test_a_forecast_above_actuals_is_not_a_risk_and_long_name_lists_are_cut() -> None:
    rows = [
        (Q3, "UK", name, "SVR-RM buyer", revenue, None, None, False, "steady")
        for name, revenue in (("Ash", 40_000.0), ("Birch", 30_000.0), ("Cedar", 20_000.0), ("Dogwood", 10_000.0))
    ]
    frame = pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA, orient="row")
    forecast = pl.DataFrame({"target_quarter": [date(2025, 10, 1)], "region": ["UK"], "forecast_revenue": [110_000.0]})

    [uk] = region_narratives(frame, forecast)
    assert uk.text == (
        "UK in Q3 2025: revenue $100.0K (QoQ n/a, YoY n/a) from 4 active customers. "
        "Accounts: 0 growing, 0 declining, 0 dormant, 0 new. "
        "Cross-sell: 4 SVR-RM buyers without C2 (Ash, Birch, Cedar and 1 more). "
        "Next quarter (Q4 2025) forecast $110.0K (+10.0% vs Q3 2025)."
    )


def test_customer_narratives_for_the_top_customers() -> None:
    assert [n.text for n in customer_narratives(snapshot(), top_n=3)] == [
        "Acme (FR, SVR-RM buyer) in Q3 2025: revenue $120.0K (QoQ +20.0%, YoY n/a), growing. "
        "Buys SVR-RM without C2: cross-sell C2.",
        "Dune (FR, SVR-RM buyer) in Q3 2025: revenue $50.0K (QoQ n/a, YoY n/a), new account. "
        "Buys SVR-RM without C2: cross-sell C2.",
        "Beta (FR, SVR-RM buyer) in Q3 2025: revenue $30.0K (QoQ -40.0%, YoY n/a), declining.",
    ]


def test_top_customer_narratives_add_their_own_svr_rm_forecast() -> None:
    """Acme has a Q4 forecast of 130K, Beta only one for Q1 2026 (not the next quarter): no sentence."""
    forecast = pl.DataFrame(
        {
            "target_quarter": [date(2025, 10, 1), date(2026, 1, 1)],
            "customer": ["Acme", "Beta"],
            "forecast_revenue": [130_000.0, 99_000.0],
        }
    )
    [acme, dune, beta] = customer_narratives(snapshot(), forecast, top_n=3)

    assert acme.text == (
        "Acme (FR, SVR-RM buyer) in Q3 2025: revenue $120.0K (QoQ +20.0%, YoY n/a), growing. "
        "Buys SVR-RM without C2: cross-sell C2. Next quarter (Q4 2025) SVR-RM forecast $130.0K."
    )
    assert (acme.region, acme.segment, dune.subject) == ("FR", "SVR-RM buyer", "Dune")
    assert beta.text == "Beta (FR, SVR-RM buyer) in Q3 2025: revenue $30.0K (QoQ -40.0%, YoY n/a), declining."


def test_a_customer_in_two_regions_is_narrated_once_in_the_region_where_it_spent_most() -> None:
    """Orca spends 10K in DE (declining) and 30K in UK (growing): one narrative, UK's words, 40K in total."""
    rows = [
        (Q3, "DE", "Orca", "Other", 10_000.0, -0.5, None, False, "decline"),
        (Q3, "UK", "Orca", "Other", 30_000.0, 0.5, None, False, "growth"),
    ]
    [orca] = customer_narratives(pl.DataFrame(rows, schema=SNAPSHOT_SCHEMA, orient="row"))

    assert (orca.region, orca.text) == (
        "UK",
        "Orca (UK, Other) in Q3 2025: revenue $40.0K (QoQ +50.0%, YoY n/a), growing.",
    )


def test_ties_are_broken_by_name_and_frame_output() -> None:
    narratives = customer_narratives(snapshot(), quarter=Q2, top_n=5)
    assert [n.subject for n in narratives] == ["Acme", "Beta", "Cielo", "Fjord", "Gala"]
    assert narratives_frame(narratives[:1]).rows() == [
        (
            "customer",
            "Acme",
            Q2,
            "FR",
            "SVR-RM buyer",
            "Acme (FR, SVR-RM buyer) in Q2 2025: revenue $100.0K (QoQ n/a, YoY n/a), C2 cross-sell candidate. "
            "Buys SVR-RM without C2: cross-sell C2.",
        )
    ]


def test_empty_snapshot_gives_no_narratives() -> None:
    empty = pl.DataFrame(schema=SNAPSHOT_SCHEMA)
    assert region_narratives(empty, FORECAST) == []
    assert customer_narratives(empty) == []
