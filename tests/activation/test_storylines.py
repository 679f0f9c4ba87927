"""Storylines: the levers and the money on each account, the ranking of the current quarter, the accounts behind
each storyline. Every number below is worked out by hand in the docstrings, not by running the code."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import polars as pl
from activation_samples import Q1, Q2, Q3, Q4, SNAPSHOT_SCHEMA, inputs, snapshot_rows, svr_rm_rows
from polars.testing import assert_frame_equal

from syno_activation.inputs import ActivationInputs
from syno_activation.levers import StorylineRules
from syno_activation.storylines import STORYLINE_SCHEMA, build_storylines, top_opportunities

Q3_24, Q4_24 = date(2024, 7, 1), date(2024, 10, 1)
COUNTRIES = {"US": "United States", "DE": "Germany", "UK": "United Kingdom", "FR": "France"}


def ranking_inputs() -> ActivationInputs:
    """Four stories, current quarter Q3 2025 (the forecast targets Q4 2025):

    - US / Other, an old quarter: Dan fell from 1,000K (Q4 2024) to 100K in Q1 2025 and stayed there; Eve 200K and
      Finn 100K are flat. The 900K lost is Q1 2025's, never ranked against Q3.
    - DE / Other, a large current decline: Anna 300K -> 100K and Bodo 100K -> 60K (both down 20% or more), Carl
      50K -> 55K. Win back 200K + 40K = 240K, from 3 customers: material.
    - UK / Desktop only, a small anecdotal cell: Gus alone, 50K -> 10K. 40K lost, but 1 customer < 3.
    - FR / SVR-RM buyer, a cross-sell pool: Hana, Ivo and Jan (20K each, both quarters) have no C2, Kim has.
      In Q3 Kim, FR's one SVR-RM buyer with C2 revenue, spent 6K of its 20K on C2 (FR's C2 offer: BACKUP
      BUSINESS): 3 x 6K = 18K; attach rate 1 of 4 = 25%. In Q2 no C2 was sold anywhere: the Q2 pool has no
      price (0 at stake).
    """
    steady = [
        (quarter, "US", name, "Other", revenue, None, None, False, "steady")
        for quarter in (Q4_24, Q1, Q2, Q3)
        for name, revenue in (("Eve", 200_000.0), ("Finn", 100_000.0))
    ]
    dan = [
        (Q4_24, "US", "Dan", "Other", 1_000_000.0, None, None, False, "new"),
        (Q1, "US", "Dan", "Other", 100_000.0, -0.9, None, False, "decline"),
    ]
    dan += [(quarter, "US", "Dan", "Other", 100_000.0, 0.0, None, False, "steady") for quarter in (Q2, Q3)]
    rows = steady + dan + [
        (Q2, "DE", "Anna", "Other", 300_000.0, None, None, False, "new"),
        (Q3, "DE", "Anna", "Other", 100_000.0, -2 / 3, None, False, "decline"),
        (Q2, "DE", "Bodo", "Other", 100_000.0, None, None, False, "new"),
        (Q3, "DE", "Bodo", "Other", 60_000.0, -0.4, None, False, "decline"),
        (Q2, "DE", "Carl", "Other", 50_000.0, None, None, False, "new"),
        (Q3, "DE", "Carl", "Other", 55_000.0, 0.1, None, False, "steady"),
        (Q2, "UK", "Gus", "Desktop only", 50_000.0, None, None, False, "new"),
        (Q3, "UK", "Gus", "Desktop only", 10_000.0, -0.8, None, False, "decline"),
    ] + [
        (quarter, "FR", name, "SVR-RM buyer", 20_000.0, None, None, name == "Kim", "steady")
        for quarter in (Q2, Q3) for name in ("Hana", "Ivo", "Jan", "Kim")
    ]  # fmt: skip
    kim_c2 = (pl.col("customer") == "Kim") & (pl.col("quarter") == Q3)
    snapshot = snapshot_rows(rows).with_columns(
        country=pl.col("region").replace_strict(COUNTRIES), c2_revenue_usd=pl.when(kim_c2).then(6_000.0).otherwise(0.0)
    )
    scorecard = pl.DataFrame(
        {"month": [date(2025, 8, 1)], "quarter": [Q3], "c2_service_family": ["BACKUP"], "c2_plan": ["BUSINESS"],
         "region": ["FR"], "active_customers": [1], "revenue_usd": [6_000.0]}
    )  # fmt: skip
    buyers = pl.DataFrame({"quarter": [Q3] * 4, "region": ["FR"] * 4, "customer": ["Hana", "Ivo", "Jan", "Kim"]})
    return inputs(
        snapshot,
        c2_scorecard_frame=scorecard,
        svr_rm_customers=buyers,
        c2_customers=pl.DataFrame({"quarter": [Q3], "customer": ["Kim"]}),
    )


RANKING_COLUMNS = ["quarter", "region", "segment", "lever", "opportunity_rank", "is_current_quarter", "customers",
                   "actual_revenue", "usd_at_stake", "is_anecdotal", "confidence", "activation_score"]  # fmt: skip


def test_the_current_quarter_is_ranked_by_money_at_stake_with_anecdotal_cells_last_and_history_apart() -> None:
    """Q3 2025: DE's 240K decline first, then FR's 18K cross-sell pool, then UK's 40K (anecdotal: below every
    material storyline whatever its money). Scores are shares of Q3's 298K at stake: 240/298 = 80.5%,
    18/298 = 6.0%, 40/298 = 13.4%. Dan's 900K is ranked in Q1 2025 only, the Q2 pool in Q2."""
    result = build_storylines(ranking_inputs(), quarter=Q3)

    expected = pl.DataFrame(
        [
            (Q1, "US", "Other", "win_back", 1, False, 1, 100_000.0, 900_000.0, False, "high", 100.0),
            (Q2, "FR", "SVR-RM buyer", "cross_sell_c2", 1, False, 3, 60_000.0, 0.0, False, "medium", 0.0),
            (Q3, "DE", "Other", "win_back", 1, True, 2, 160_000.0, 240_000.0, False, "high", 80.5),
            (Q3, "FR", "SVR-RM buyer", "cross_sell_c2", 2, True, 3, 60_000.0, 18_000.0, False, "medium", 6.0),
            (Q3, "UK", "Desktop only", "win_back", 3, True, 1, 10_000.0, 40_000.0, True, "low", 13.4),
        ],
        schema={name: STORYLINE_SCHEMA[name] for name in RANKING_COLUMNS},
        orient="row",
    )
    assert_frame_equal(result.select(RANKING_COLUMNS), expected)
    assert top_opportunities(result, Q3, 5) == (
        "DE / Other: Win back 2 declining accounts: -$240.0K (-60.0%) vs Q2 2025. $240.0K at stake, "
        "high confidence. Accounts: Anna, Bodo.",
        "FR / SVR-RM buyer: Cross-sell C2 BACKUP BUSINESS to 3 SVR-RM buyers without C2 (25.0% of FR SVR-RM "
        "buyers have C2). $18.0K at stake, medium confidence. Accounts: Hana, Ivo, Jan.",
        "Gus (UK / Desktop only): Win back 1 declining account: -$40.0K (-80.0%) vs Q2 2025. $40.0K at stake, "
        "low confidence (anecdotal).",
    )
    assert result.filter(pl.col("quarter") == Q3).get_column("confidence_note").to_list() == [
        "Observed: revenue lost since Q2 2025.",
        "Estimate: 3 x $6.0K, the C2 revenue per SVR-RM buyer with C2 in FR in Q3 2025.",
        "Observed: revenue lost since Q2 2025. Only 1 customer in UK / Desktop only: treat as anecdotal.",
    ]


def test_the_accounts_listed_are_exactly_those_that_make_the_storyline_and_sum_to_its_numbers() -> None:
    """DE's decline is Anna's (100K now, 300K before, 200K lost) and Bodo's (60K, 100K, 40K lost), not Carl's
    growth: 160K of revenue, 400K before, 240K at stake. No year-ago rows: 0."""
    result = build_storylines(ranking_inputs(), quarter=Q3)
    [row] = result.filter((pl.col("quarter") == Q3) & (pl.col("region") == "DE")).iter_rows(named=True)

    accounts: list[dict[str, Any]] = json.loads(row["accounts"])
    assert accounts == [
        {"customer": "Anna", "country": "Germany", "last_order_quarter": "2025-07-01", "last_order_date": None,
         "revenue_usd": 100_000.0, "previous_revenue_usd": 300_000.0, "year_ago_revenue_usd": 0.0,
         "usd_at_stake": 200_000.0, "buys": "other products", "svr_rm_revenue_usd": 0.0, "svr_rm_forecast_usd": None},
        {"customer": "Bodo", "country": "Germany", "last_order_quarter": "2025-07-01", "last_order_date": None,
         "revenue_usd": 60_000.0, "previous_revenue_usd": 100_000.0, "year_ago_revenue_usd": 0.0,
         "usd_at_stake": 40_000.0, "buys": "other products", "svr_rm_revenue_usd": 0.0, "svr_rm_forecast_usd": None},
    ]  # fmt: skip
    sums = {key: sum(account[key] for account in accounts) for key in ("revenue_usd", "usd_at_stake")}
    assert (row["customers"], row["actual_revenue"], row["previous_revenue"], row["usd_at_stake"]) == (
        len(accounts),
        sums["revenue_usd"],
        400_000.0,
        sums["usd_at_stake"],
    )


def test_materiality_thresholds_come_from_the_rules() -> None:
    """With 1 customer and no revenue floor enough to be material, Gus's 40K ranks above FR's 18K pool."""
    rules = StorylineRules(min_customers=1, min_revenue_usd=0.0)
    current = build_storylines(ranking_inputs(), quarter=Q3, rules=rules).filter(pl.col("is_current_quarter"))

    assert current.select("region", "lever", "opportunity_rank", "is_anecdotal", "confidence").rows() == [
        ("DE", "win_back", 1, False, "high"),
        ("UK", "win_back", 2, False, "high"),
        ("FR", "cross_sell_c2", 3, False, "medium"),
    ]


def lever_inputs() -> ActivationInputs:
    """One account per lever, Q3 2025 (forecasts for Q4 2025):

    - DE / Other: Lars bought 8K in Q3 2024 and 4K in Q4 2024, nothing since: dormant; a quarter of its trailing
      year (8K + 4K + 0 + 0) / 4 = 3K; last order Q4 2024. Mats and Nils (10K each) make the cell material.
    - FR / SVR-RM buyer: Acme (150K, of which SVR-RM T1 120K, no C2) has its own SVR-RM forecast, 90K with an 80%
      interval up to 110K < 120K: 120K - 90K = 30K to protect, in FR (where it spent all). FR's forecast (240K,
      up to 260K > FR's 250K) is no fall, so Beto and Caro (50K each, with C2) are not at risk. FR sold no C2 in
      Q3: the offer is the overall one, STORAGE ADVANCED in DE (busiest month 3 customers, 8K + 12K = 20K):
      20K / 3 = 6,666.67 for Acme; 2 of FR's 3 SVR-RM buyers have C2 (66.7%).
    - JP / SVR-RM buyer: JP's forecast 80K with an interval up to 95K < JP's 100K: a fall of 20% shared by
      revenue: Kenji 60K -> 12K, Mio 40K -> 8K; Noa (no revenue) is not at risk but counts as a customer.
    - US / SVR-RM buyer: Olga 100K, US forecast 85K without interval: 15% down, at least 10%: 15K. Anecdotal.
    - UK / Desktop only: Pia grows 10K -> 15K (+50%), Quin 10K -> 11K (+10%, not growing), Rui flat. T1 buyers
      in Q3 spend 120K (Acme), 20K (Kenji), 10K (Mio): median 20K for Pia. Beto's T1 return (net 0) is no buy.
    """
    both = (Q2, Q3)
    rows = [
        (Q3_24, "DE", "Lars", "Other", 8_000.0, None, None, False, "new"),
        (Q4_24, "DE", "Lars", "Other", 4_000.0, -0.5, None, False, "decline"),
        (Q1, "DE", "Lars", "Other", 0.0, -1.0, None, False, "decline"),
        (Q2, "DE", "Lars", "Other", 0.0, None, None, False, "steady"),
        (Q3, "DE", "Lars", "Other", 0.0, None, -1.0, False, "dormant"),
        *[(q, "DE", name, "Other", 10_000.0, None, None, False, "steady") for q in both for name in ("Mats", "Nils")],
        *[(q, "FR", "Acme", "SVR-RM buyer", 150_000.0, None, None, False, "steady") for q in both],
        *[(q, "FR", name, "SVR-RM buyer", 50e3, None, None, True, "steady") for q in both for name in ("Beto", "Caro")],
        *[(q, "JP", "Kenji", "SVR-RM buyer", 60_000.0, None, None, True, "steady") for q in both],
        *[(q, "JP", "Mio", "SVR-RM buyer", 40_000.0, None, None, True, "steady") for q in both],
        *[(q, "JP", "Noa", "SVR-RM buyer", 0.0, None, None, True, "steady") for q in both],
        *[(q, "US", "Olga", "SVR-RM buyer", 100_000.0, None, None, True, "steady") for q in both],
        (Q2, "UK", "Pia", "Desktop only", 10_000.0, None, None, False, "steady"),
        (Q3, "UK", "Pia", "Desktop only", 15_000.0, 0.5, None, False, "growth"),
        (Q2, "UK", "Quin", "Desktop only", 10_000.0, None, None, False, "steady"),
        (Q3, "UK", "Quin", "Desktop only", 11_000.0, 0.1, None, False, "steady"),
        *[(q, "UK", "Rui", "Desktop only", 10_000.0, None, None, False, "steady") for q in both],
    ]  # fmt: skip
    region_forecasts = pl.DataFrame(
        {"target_quarter": [Q4] * 3, "region": ["FR", "JP", "US"], "forecast_revenue": [240_000.0, 80_000.0, 85_000.0],
         "lower_80": [220_000.0, 60_000.0, None], "upper_80": [260_000.0, 95_000.0, None]}
    )  # fmt: skip
    customer_forecasts = pl.DataFrame(
        {"target_quarter": [Q4], "customer": ["Acme"], "forecast_revenue": [90_000.0], "lower_80": [70_000.0],
         "upper_80": [110_000.0]}
    )  # fmt: skip
    scorecard = pl.DataFrame(
        {"month": [date(2025, 7, 1), date(2025, 8, 1), date(2025, 7, 1)], "quarter": [Q3] * 3,
         "c2_service_family": ["STORAGE", "STORAGE", "BACKUP"], "c2_plan": ["ADVANCED", "ADVANCED", "BUSINESS"],
         "region": ["DE"] * 3, "active_customers": [2, 3, 1], "revenue_usd": [8_000.0, 12_000.0, 5_000.0]}
    )  # fmt: skip
    svr_rm = svr_rm_rows(
        [(Q3, "Acme", "T1", 3, 120_000.0), (Q3, "Kenji", "T1", 1, 20_000.0), (Q3, "Mio", "T1", 1, 10_000.0),
         (Q3, "Olga", "T2", 2, 100_000.0), (Q3, "Beto", "T1", 0, 5_000.0)]
    )  # fmt: skip
    buyers = pl.DataFrame({"quarter": [Q3] * 3, "region": ["FR"] * 3, "customer": ["Acme", "Beto", "Caro"]})
    return inputs(
        snapshot_rows(rows),
        region_forecasts=region_forecasts,
        customer_forecasts=customer_forecasts,
        c2_scorecard_frame=scorecard,
        svr_rm_customers=buyers,
        c2_customers=pl.DataFrame({"quarter": [Q3, Q3], "customer": ["Beto", "Caro"]}),
        svr_rm_revenue=svr_rm,
    )


def test_each_lever_puts_its_money_on_the_accounts_behind_it() -> None:
    """Ranked: FR's 30K, JP's 20K protect before UK's 20K upsell (a tie: forecast before potential), FR's 6,666.67
    pool, DE's 3K; US's 15K is anecdotal. Q3's total is 94,666.67: 31.7%, 21.1%, 21.1%, 7.0%, 3.2%, 15.8%.
    Forecasts shared by revenue: FR 240K x 150/250 = 144K (-4.0%), JP 80K (-20.0%), US 85K (-15.0%)."""
    current = build_storylines(lever_inputs(), quarter=Q3).filter(pl.col("is_current_quarter"))

    no_interval = "falls 10% or more below Q3 2025, with no 80% interval"
    assert current.select(
        "region", "segment", "lever", "opportunity_rank", "customers", "actual_revenue", "forecast_revenue",
        "variance_pct", "usd_at_stake", "is_anecdotal", "activation_score", "recommended_action", "confidence_note",
    ).rows() == [
        ("FR", "SVR-RM buyer", "protect_pipeline", 1, 1, 150_000.0, 144_000.0, -4.0, 30_000.0, False, 31.7,
         "Protect the Q4 2025 pipeline of 1 account: forecast -$30.0K vs Q3 2025",
         "Estimate: the Q4 2025 forecast falls below Q3 2025, beyond its 80% interval; 1 account on its own SVR-RM "
         "forecast."),
        ("JP", "SVR-RM buyer", "protect_pipeline", 2, 2, 100_000.0, 80_000.0, -20.0, 20_000.0, False, 21.1,
         "Protect the Q4 2025 pipeline of 2 accounts: forecast -$20.0K vs Q3 2025",
         "Estimate: the Q4 2025 forecast falls below Q3 2025, beyond its 80% interval; 2 accounts on the JP "
         "forecast shared by revenue."),
        ("UK", "Desktop only", "upsell_rackmount", 3, 1, 15_000.0, None, None, 20_000.0, False, 21.1,
         "Upsell rackmount (T1) to 1 growing desktop buyer: +50.0% vs Q2 2025",
         "Estimate: 1 x $20.0K, the median T1 revenue per T1 buyer in Q3 2025."),
        ("FR", "SVR-RM buyer", "cross_sell_c2", 4, 1, 150_000.0, 144_000.0, -4.0, 6_666.67, False, 7.0,
         "Cross-sell C2 STORAGE ADVANCED to 1 SVR-RM buyer without C2 (66.7% of FR SVR-RM buyers have C2)",
         "Estimate: 1 x $6.7K, the revenue per active customer of C2 STORAGE ADVANCED in all regions (none sold in "
         "FR) in Q3 2025."),
        ("DE", "Other", "re_engage", 5, 1, 0.0, None, None, 3_000.0, False, 3.2,
         "Re-engage 1 dormant account: last order Q4 2024",
         "Observed: a quarter of the accounts' revenue over the four quarters before Q3 2025."),
        ("US", "SVR-RM buyer", "protect_pipeline", 6, 1, 100_000.0, 85_000.0, -15.0, 15_000.0, True, 15.8,
         "Protect the Q4 2025 pipeline of 1 account: forecast -$15.0K vs Q3 2025",
         f"Estimate: the Q4 2025 forecast {no_interval}; 1 account on the US forecast shared by revenue. "
         "Only 1 customer in US / SVR-RM buyer: treat as anecdotal."),
    ]  # fmt: skip
    accounts = {
        row["lever"] + "/" + row["region"]: json.loads(row["accounts"]) for row in current.iter_rows(named=True)
    }
    assert [(a["customer"], a["usd_at_stake"]) for a in accounts["protect_pipeline/JP"]] == [
        ("Kenji", 12_000.0),
        ("Mio", 8_000.0),
    ]
    [acme] = accounts["protect_pipeline/FR"]
    assert (acme["buys"], acme["svr_rm_revenue_usd"], acme["svr_rm_forecast_usd"]) == ("SVR-RM T1, no C2", 120e3, 90e3)
    [lars] = accounts["re_engage/DE"]
    assert (lars["last_order_quarter"], lars["year_ago_revenue_usd"]) == ("2024-10-01", 8_000.0)


def test_an_accounts_own_forecast_counts_only_in_the_region_where_it_spent_most() -> None:
    """Orca buys SVR-RM in DE (10K) and UK (30K): its own forecast (20K, up to 30K, below its 40K of SVR-RM) puts
    40K - 20K = 20K at risk in UK only. DE's forecast (50K, up to 60K, vs DE's 100K) halves Zed's 90K: 45K;
    Orca, judged on its own forecast, is left out of DE's fall."""
    rows = [
        (quarter, region, name, "SVR-RM buyer", revenue, None, None, True, "steady")
        for quarter in (Q2, Q3)
        for region, name, revenue in (("DE", "Orca", 10_000.0), ("UK", "Orca", 30_000.0), ("DE", "Zed", 90_000.0))
    ]
    region_forecasts = pl.DataFrame(
        {"target_quarter": [Q4], "region": ["DE"], "forecast_revenue": [50_000.0], "upper_80": [60_000.0]}
    )
    customer_forecasts = pl.DataFrame(
        {"target_quarter": [Q4], "customer": ["Orca"], "forecast_revenue": [20_000.0], "upper_80": [30_000.0]}
    )
    both = inputs(
        snapshot_rows(rows),
        region_forecasts=region_forecasts,
        customer_forecasts=customer_forecasts,
        svr_rm_revenue=svr_rm_rows([(Q3, "Orca", "T1", 1, 40_000.0), (Q3, "Zed", "T2", 2, 90_000.0)]),
    )

    current = build_storylines(both, quarter=Q3).filter(pl.col("is_current_quarter"))

    assert [
        (row["region"], row["lever"], [(a["customer"], a["usd_at_stake"]) for a in json.loads(row["accounts"])])
        for row in current.iter_rows(named=True)
    ] == [("DE", "protect_pipeline", [("Zed", 45_000.0)]), ("UK", "protect_pipeline", [("Orca", 20_000.0)])]


def test_the_c2_attach_price_is_what_comparable_svr_rm_buyers_spend_on_c2() -> None:
    """Q3 2025. FR: Bea and Cid, SVR-RM buyers, spent 4K and 8K on C2: Ann's price is (4K + 8K) / 2 = 6K, not the
    100K per active customer of FR's BACKUP BUSINESS plan, and not counting Dee, a desktop buyer who spent 50K on
    C2. DE: Fay has C2 but bought none this quarter, so DE has no comparable buyer: Eli's price is the one over all
    regions, (4K + 8K + 9K (Gil, UK)) / 3 = 7K. The offer stays the plan: DE sold none, so the overall one."""
    rows = [
        (Q3, "FR", "Ann", "SVR-RM buyer", 30_000.0, None, None, False, "steady", 0.0),
        (Q3, "FR", "Bea", "SVR-RM buyer", 24_000.0, None, None, True, "steady", 4_000.0),
        (Q3, "FR", "Cid", "SVR-RM buyer", 28_000.0, None, None, True, "steady", 8_000.0),
        (Q3, "FR", "Dee", "Desktop only", 60_000.0, None, None, True, "steady", 50_000.0),
        (Q3, "DE", "Eli", "SVR-RM buyer", 30_000.0, None, None, False, "steady", 0.0),
        (Q3, "DE", "Fay", "SVR-RM buyer", 30_000.0, None, None, True, "steady", 0.0),
        (Q3, "UK", "Gil", "SVR-RM buyer", 30_000.0, None, None, True, "steady", 9_000.0),
    ]
    snapshot = pl.DataFrame(rows, schema={**SNAPSHOT_SCHEMA, "c2_revenue_usd": pl.Float64}, orient="row")
    scorecard = pl.DataFrame(
        {"month": [date(2025, 8, 1)], "quarter": [Q3], "c2_service_family": ["BACKUP"], "c2_plan": ["BUSINESS"],
         "region": ["FR"], "active_customers": [1], "revenue_usd": [100_000.0]}
    )  # fmt: skip

    current = build_storylines(inputs(snapshot, c2_scorecard_frame=scorecard), quarter=Q3).filter(
        pl.col("lever") == "cross_sell_c2"
    )

    assert [
        (row["region"], [account["customer"] for account in json.loads(row["accounts"])], row["usd_at_stake"],
         row["recommended_action"], row["confidence_note"])
        for row in current.sort("region").iter_rows(named=True)
    ] == [
        ("DE", ["Eli"], 7_000.0, "Cross-sell C2 BACKUP BUSINESS to 1 SVR-RM buyer without C2",
         "Estimate: 1 x $7.0K, the C2 revenue per SVR-RM buyer with C2 in all regions (none in DE) in Q3 2025. "
         "Only 2 customers in DE / SVR-RM buyer: treat as anecdotal."),
        ("FR", ["Ann"], 6_000.0, "Cross-sell C2 BACKUP BUSINESS to 1 SVR-RM buyer without C2",
         "Estimate: 1 x $6.0K, the C2 revenue per SVR-RM buyer with C2 in FR in Q3 2025."),
    ]  # fmt: skip


def test_an_empty_snapshot_gives_no_storylines() -> None:
    empty = build_storylines(inputs(snapshot_rows([])), quarter=None)
    assert_frame_equal(empty, pl.DataFrame(schema=STORYLINE_SCHEMA))
