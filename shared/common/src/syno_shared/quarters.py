"""Quarter arithmetic, the one home for it: a quarter is named by its first day (date(2025, 7, 1) = Q3 2025)."""

from __future__ import annotations

from datetime import date, timedelta


def quarter_start(day: date) -> date:
    """First day of the quarter that contains `day`."""
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def add_quarters(quarter: date, count: int) -> date:
    """The first day of the quarter `count` quarters after the one holding `quarter` (count may be negative)."""
    index = quarter.year * 4 + (quarter.month - 1) // 3 + count
    return date(index // 4, 3 * (index % 4) + 1, 1)


def next_quarter(quarter: date) -> date:
    """The first day of the quarter after the one holding `quarter`."""
    return add_quarters(quarter, 1)


def previous_quarter(quarter: date) -> date:
    """The first day of the quarter before the one holding `quarter`."""
    return add_quarters(quarter, -1)


def quarter_label(quarter: date) -> str:
    """date(2025, 7, 1) -> "Q3 2025"."""
    return f"Q{(quarter.month - 1) // 3 + 1} {quarter.year}"


def latest_complete_quarter(latest_invoice_date: date | None) -> date | None:
    """The quarter before the one holding the latest invoice, unless that invoice is on the quarter's last day."""
    if latest_invoice_date is None:
        return None
    current = quarter_start(latest_invoice_date)
    last_day = next_quarter(current) - timedelta(days=1)
    return current if latest_invoice_date == last_day else previous_quarter(current)
