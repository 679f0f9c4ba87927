"""The real lines of each sheet, clean: when they were sold (seasonality and growth), on which
invoice, to whom, what, how many and at what price; and where they sit among the messy rows
(blank, subtotal and repeated-header rows)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from typing import Final, Literal

from syno_sample.catalogue import CATALOGUE, QUANTITIES, item_code
from syno_sample.customers import (
    COMMENTS,
    DEFAULT_WAREHOUSE,
    RETURN_COMMENT,
    UNMAPPED_PRICING_RATE,
    WAREHOUSE_BY_REGION,
    WHOLE_UNIT_CURRENCIES,
    Customer,
)
from syno_sample.mapping import UNMAPPED_COUNTRY, UNMAPPED_CURRENCY, UNMAPPED_REGION
from syno_sample.streams import stream
from syno_shared.contract import SheetKind


@dataclass
class Lines:
    """The real lines of one sheet, clean, in workbook order."""

    invoice_number: list[str] = field(default_factory=list)
    invoice_date: list[date] = field(default_factory=list)
    ship_date: list[date | None] = field(default_factory=list)
    customer: list[str] = field(default_factory=list)
    country: list[str] = field(default_factory=list)
    entry: list[int] = field(default_factory=list)
    item_code: list[str | None] = field(default_factory=list)
    quantity: list[int] = field(default_factory=list)
    currency: list[str] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    discount: list[float | None] = field(default_factory=list)
    tt_discount: list[float | None] = field(default_factory=list)
    total_local: list[float] = field(default_factory=list)
    delivery_from: list[str | None] = field(default_factory=list)
    ship_to: list[str | None] = field(default_factory=list)
    comments: list[str | None] = field(default_factory=list)


# Layout codes; a row >= 0 is the index of a real line.
BLANK_ROW: Final = -1
HEADER_ROW: Final = -2
SUBTOTAL_ROW: Final = -3

SubtotalStyle = Literal["customer", "pi"]


@dataclass
class Sheet:
    name: str
    lines: Lines
    layout: list[int]
    subtotals: list[tuple[SubtotalStyle, float]]
    """In layout order, one per SUBTOTAL_ROW."""


def day_weight(day: date, first_day: date, growth: float) -> float:
    weekday = (1.0, 1.0, 1.0, 1.0, 1.0, 0.15, 0.05)[day.weekday()]
    quarter = (0.9, 1.0, 0.95, 1.2)[(day.month - 1) // 3]
    month_in_quarter = (0.9, 1.0, 1.15)[(day.month - 1) % 3]
    trend = math.exp(math.log1p(growth) * (day - first_day).days / 365.25)
    return weekday * quarter * month_in_quarter * trend


def days_of(year: int, end: date) -> list[date]:
    last = min(date(year, 12, 31), end)
    return [date(year, 1, 1) + timedelta(days=k) for k in range((last - date(year, 1, 1)).days + 1)]


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split total in proportion to weights, by largest remainder."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda k: (counts[k] - exact[k], k))
    for k in by_remainder[: total - sum(counts)]:
        counts[k] += 1
    return counts


def sheet_lines(
    sheet: str,
    kind: SheetKind,
    n: int,
    days: list[date],
    day_weights: list[float],
    customers: tuple[list[Customer], list[float]],
    regions: dict[str, str],
    rates: dict[str, float],
    *,
    seed: int,
    unmapped_share: float,
    return_share: float,
) -> Lines:
    rng = stream(seed, sheet, "lines")
    lines = Lines()
    if n == 0:
        return lines
    entries = [k for k, entry in enumerate(CATALOGUE) if entry.sheet_kind == kind]
    line_dates = sorted(rng.choices(days, day_weights, k=n))
    line_entries = rng.choices(entries, [CATALOGUE[k].weight for k in entries], k=n)

    # Invoices: runs of consecutive lines (sorted by date) sharing a customer and a date.
    sizes = rng.choices(range(1, 9), (40, 20, 14, 10, 6, 4, 3, 3), k=n)
    starts = list(accumulate([0, *sizes]))
    starts = [s for s in starts if s < n]
    customer_list, customer_cum = customers
    invoice_customers = rng.choices(customer_list, cum_weights=customer_cum, k=len(starts))
    prefix = "PI" if kind == "hardware" else "C2PI"
    year2 = f"{line_dates[0].year % 100:02d}"

    quantity_draws = {kind_: rng.choices(values, weights, k=n) for kind_, (values, weights) in QUANTITIES.items()}
    # A blank Discount cell means no discount: the truth is null and Total uses 0.
    discounts = rng.choices((None, 0.0, 0.03, 0.05, 0.1, 0.15), (55, 15, 8, 10, 8, 4), k=n)
    tt_discounts = rng.choices((None, 0.0, 0.02), (85, 10, 5), k=n)
    comments = rng.choices([c for c, _ in COMMENTS], [w for _, w in COMMENTS], k=n)
    ship_delays = rng.choices((0, 1, 2, 3, 5, 7, 10), (20, 25, 20, 15, 10, 6, 4), k=n)
    last_day = days[-1]

    for invoice, start in enumerate(starts):
        stop = starts[invoice + 1] if invoice + 1 < len(starts) else n
        customer = invoice_customers[invoice]
        invoice_date = line_dates[start]
        currency = customer.currency if rng.random() < 0.9 else "USD"
        region = regions.get(customer.country, UNMAPPED_REGION)
        warehouse = WAREHOUSE_BY_REGION.get(region, DEFAULT_WAREHOUSE)
        for i in range(start, stop):
            entry = CATALOGUE[line_entries[i]]
            line_currency = UNMAPPED_CURRENCY if rng.random() < unmapped_share else currency
            country = UNMAPPED_COUNTRY if rng.random() < unmapped_share else customer.country
            profile = "C2" if kind == "c2" else entry.product_type
            quantity = quantity_draws[profile][i]
            is_return = rng.random() < return_share
            if is_return:
                quantity = -quantity
            rate = rates.get(line_currency, UNMAPPED_PRICING_RATE)
            decimals = 0 if line_currency in WHOLE_UNIT_CURRENCIES else 2
            price = round(entry.list_price_usd * rng.uniform(0.92, 1.04) / rate, decimals)
            ship_date = None
            if kind == "hardware" and rng.random() > 0.02:
                ship_date = min(invoice_date + timedelta(days=ship_delays[i]), last_day)

            lines.invoice_number.append(f"{prefix}{year2}{invoice + 1:06d}")
            lines.invoice_date.append(invoice_date)
            lines.ship_date.append(ship_date)
            lines.customer.append(customer.name)
            lines.country.append(country)
            lines.entry.append(line_entries[i])
            lines.item_code.append(None if rng.random() < 0.03 else item_code(entry))
            lines.quantity.append(quantity)
            lines.currency.append(line_currency)
            lines.price.append(price)
            lines.discount.append(discounts[i])
            lines.tt_discount.append(tt_discounts[i])
            lines.total_local.append(round(quantity * price * (1.0 - (discounts[i] or 0.0)), 2))
            lines.delivery_from.append(None if rng.random() < 0.02 else warehouse)
            lines.ship_to.append(customer.name if rng.random() < 0.25 else None)
            lines.comments.append(RETURN_COMMENT if is_return else comments[i])
    return lines


def layout_rows(
    lines: Lines, rng: random.Random, mess_share: float
) -> tuple[list[int], list[tuple[SubtotalStyle, float]]]:
    """Where the real lines go among blank, subtotal (one per month) and repeated-header rows."""
    n = len(lines.invoice_number)
    layout: list[int] = []
    subtotals: list[tuple[SubtotalStyle, float]] = []
    if mess_share == 0.0:
        return list(range(n)), subtotals
    repeats = 1 + n // 50_000
    header_before = {n * (k + 1) // (repeats + 1) for k in range(repeats)} if n >= 2 else set()
    block_total = 0.0
    for i in range(n):
        if i in header_before:
            layout.append(HEADER_ROW)
        if rng.random() < mess_share / 2:
            layout.append(BLANK_ROW)
        layout.append(i)
        block_total += lines.total_local[i]
        if i == n - 1 or lines.invoice_date[i + 1].month != lines.invoice_date[i].month:
            if rng.random() < 0.5:
                layout.append(BLANK_ROW)
            layout.append(SUBTOTAL_ROW)
            subtotals.append(("customer" if rng.random() < 0.7 else "pi", round(block_total, 2)))
            block_total = 0.0
    return layout, subtotals
