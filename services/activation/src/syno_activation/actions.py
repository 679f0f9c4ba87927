"""The words of a storyline (pure): its recommended action, its confidence note and its one-line summary.

Each function takes one storyline as a mapping of its columns (`storylines` builds them, with a few working
columns: c2_offer, c2_price, is_offer_overall, attach_rate, entry_price, own_forecast_accounts,
interval_accounts, first_last_order, latest_last_order, cell_customers, cell_reference_revenue).
Numbers are formatted as in the narratives (`format_usd`, `format_pct`), so the same data always gives the same words.

Recommended action, by lever::

    win_back          Win back 2 declining accounts: -$25.0K (-38.5%) vs Q2 2025
    re_engage         Re-engage 3 dormant accounts: last orders Q3 2024 to Q1 2025
    protect_pipeline  Protect the Q4 2025 pipeline of 4 accounts: forecast -$36.0K vs Q3 2025
    cross_sell_c2     Cross-sell C2 BACKUP BUSINESS to 3 SVR-RM buyers without C2 (40.0% of FR SVR-RM buyers
                      have C2)
    upsell_rackmount  Upsell rackmount (T1) to 2 growing desktop buyers: +50.0% vs Q2 2025
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any, Final

from syno_activation.levers import (
    LEVER_CROSS_SELL_C2,
    LEVER_PROTECT,
    LEVER_RE_ENGAGE,
    LEVER_UPSELL_RACKMOUNT,
    LEVER_WIN_BACK,
    PRICE_OVERALL_BUYERS,
    PRICE_REGION_BUYERS,
    StorylineRules,
)
from syno_activation.narratives import format_pct, format_usd
from syno_activation.segments import ENTRY_RACKMOUNT_TIER
from syno_shared.quarters import next_quarter, previous_quarter, quarter_label

NAMED_ACCOUNTS: Final = 3  # accounts named in a summary line

Storyline = Mapping[str, Any]


def _count(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def _change(now: float, before: float) -> float | None:
    return now / before - 1.0 if before > 0 else None


def _last_orders(first: date | None, latest: date | None) -> str:
    if first is None or latest is None:
        return "no order on record"
    if first == latest:
        return f"last order {quarter_label(first)}"
    return f"last orders {quarter_label(first)} to {quarter_label(latest)}"


def recommended_action(row: Storyline) -> str:
    lever, quarter, accounts = row["lever"], row["quarter"], row["customers"]
    before = quarter_label(previous_quarter(quarter))
    if lever == LEVER_WIN_BACK:
        lost = row["usd_at_stake"]
        change = _change(row["previous_revenue"] - lost, row["previous_revenue"])
        return (
            f"Win back {_count(accounts, 'declining account')}: {format_usd(-lost)} ({format_pct(change)}) vs {before}"
        )
    if lever == LEVER_RE_ENGAGE:
        orders = _last_orders(row["first_last_order"], row["latest_last_order"])
        return f"Re-engage {_count(accounts, 'dormant account')}: {orders}"
    if lever == LEVER_PROTECT:
        return (
            f"Protect the {quarter_label(next_quarter(quarter))} pipeline of {_count(accounts, 'account')}: "
            f"forecast {format_usd(-row['usd_at_stake'])} vs {quarter_label(quarter)}"
        )
    if lever == LEVER_CROSS_SELL_C2:
        offer = f" {row['c2_offer']}" if row["c2_offer"] else ""
        rate = row["attach_rate"]
        comparable = f" ({rate * 100.0:.1f}% of {row['region']} SVR-RM buyers have C2)" if rate is not None else ""
        return f"Cross-sell C2{offer} to {_count(accounts, 'SVR-RM buyer')} without C2{comparable}"
    if lever == LEVER_UPSELL_RACKMOUNT:
        growth = format_pct(_change(row["actual_revenue"], row["previous_revenue"]))
        return (
            f"Upsell rackmount ({ENTRY_RACKMOUNT_TIER}) to {_count(accounts, 'growing desktop buyer')}: "
            f"{growth} vs {before}"
        )
    raise ValueError(f"unknown lever {lever!r}")


def _basis(row: Storyline, rules: StorylineRules) -> str:
    lever, quarter, accounts = row["lever"], row["quarter"], row["customers"]
    label = quarter_label(quarter)
    if lever == LEVER_WIN_BACK:
        return f"Observed: revenue lost since {quarter_label(previous_quarter(quarter))}."
    if lever == LEVER_RE_ENGAGE:
        return f"Observed: a quarter of the accounts' revenue over the four quarters before {label}."
    if lever == LEVER_PROTECT:
        own = row["own_forecast_accounts"]
        parts = ([f"{_count(own, 'account')} on its own SVR-RM forecast"] if own else []) + (
            [f"{_count(accounts - own, 'account')} on the {row['region']} forecast shared by revenue"]
            if accounts > own
            else []
        )
        decline = f"{rules.forecast_decline * 100.0:.0f}% or more"
        if row["interval_accounts"] == accounts:
            fall = f"below {label}, beyond its 80% interval"
        elif row["interval_accounts"] == 0:
            fall = f"{decline} below {label}, with no 80% interval"
        else:
            fall = f"below {label}, beyond its 80% interval or {decline} where it has none"
        return f"Estimate: the {quarter_label(next_quarter(quarter))} forecast falls {fall}; {'; '.join(parts)}."
    if lever == LEVER_CROSS_SELL_C2:
        basis, price = row["c2_price_basis"], row["c2_price"]
        if price is None or basis is None:
            return f"No C2 sold in {label}: nothing to price the offer with."
        if basis == PRICE_REGION_BUYERS:
            return (
                f"Estimate: {accounts} x {format_usd(price)}, the C2 revenue per SVR-RM buyer with C2 in "
                f"{row['region']} in {label}."
            )
        if basis == PRICE_OVERALL_BUYERS:
            return (
                f"Estimate: {accounts} x {format_usd(price)}, the C2 revenue per SVR-RM buyer with C2 in all regions "
                f"(none in {row['region']}) in {label}."
            )
        scope = f"all regions (none sold in {row['region']})" if row["is_offer_overall"] else row["region"]
        return (
            f"Estimate: {accounts} x {format_usd(price)}, the revenue per active customer of "
            f"C2 {row['c2_offer']} in {scope} in {label}."
        )
    if row["entry_price"] is None:
        return f"No {ENTRY_RACKMOUNT_TIER} sold in {label}: nothing to price the upsell with."
    return (
        f"Estimate: {accounts} x {format_usd(row['entry_price'])}, the median {ENTRY_RACKMOUNT_TIER} revenue per "
        f"{ENTRY_RACKMOUNT_TIER} buyer in {label}."
    )


def confidence_note(row: Storyline, rules: StorylineRules) -> str:
    """What the money rests on, then why the cell is anecdotal (if it is)."""
    cell = f"{row['region']} / {row['segment']}"
    sentences = [_basis(row, rules)]
    if row["cell_customers"] < rules.min_customers:
        sentences.append(f"Only {_count(row['cell_customers'], 'customer')} in {cell}: treat as anecdotal.")
    if row["cell_reference_revenue"] < rules.min_revenue_usd:
        sentences.append(
            f"{cell} sold under {format_usd(rules.min_revenue_usd)} in {quarter_label(row['quarter'])} "
            f"and the quarter before: treat as anecdotal."
        )
    return " ".join(sentences)


def opportunity_line(row: Storyline) -> str:
    """One storyline as the summary lists it: who, what, how much, how sure, whom to call."""
    names = [account["customer"] for account in json.loads(row["accounts"])]
    cell = f"{row['region']} / {row['segment']}"
    subject = f"{names[0]} ({cell})" if len(names) == 1 else cell
    confidence = f"{row['confidence']} confidence" + (" (anecdotal)" if row["is_anecdotal"] else "")
    line = f"{subject}: {row['recommended_action']}. {format_usd(row['usd_at_stake'])} at stake, {confidence}."
    if len(names) > 1:
        shown = ", ".join(names[:NAMED_ACCOUNTS])
        more = f" and {len(names) - NAMED_ACCOUNTS} more" if len(names) > NAMED_ACCOUNTS else ""
        line += f" Accounts: {shown}{more}."
    return line
