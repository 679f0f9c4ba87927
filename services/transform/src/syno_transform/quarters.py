"""Quarter arithmetic: quarter = the first day of the quarter."""

from __future__ import annotations

from datetime import date, timedelta


def quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def next_quarter(quarter: date) -> date:
    month = quarter.month + 3
    return date(quarter.year + (month > 12), (month - 1) % 12 + 1, 1)


def previous_quarter(quarter: date) -> date:
    month = quarter.month - 3
    return date(quarter.year - (month < 1), (month - 1) % 12 + 1, 1)


def latest_complete_quarter(latest_invoice_date: date | None) -> date | None:
    """The quarter before the one holding the latest invoice, unless that invoice is on the quarter's last day."""
    if latest_invoice_date is None:
        return None
    current = quarter_start(latest_invoice_date)
    last_day = next_quarter(current) - timedelta(days=1)
    return current if latest_invoice_date == last_day else previous_quarter(current)
