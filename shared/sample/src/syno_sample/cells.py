"""The cells: each real line rendered with the known messiness (stray spaces, product tags, text
numbers and dates, bare date serials, NULL strings), subtotal and repeated-header rows, and the
sheets written with xlsxwriter."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Final

import xlsxwriter

from syno_sample.catalogue import CATALOGUE, TAGS
from syno_sample.lines import BLANK_ROW, HEADER_ROW, SUBTOTAL_ROW, Lines, Sheet, SubtotalStyle
from syno_sample.streams import stream
from syno_shared.contract import WORKBOOK_COLUMNS

HEADER: Final[tuple[str, ...]] = tuple(WORKBOOK_COLUMNS)


class _ExcelDate(int):
    """An Excel day serial to be written with a date format (a real Excel date)."""


_EXCEL_EPOCH: Final = date(1899, 12, 30)

Cell = str | float | int | None


@dataclass(frozen=True)
class _Formats:
    date: object
    money: object
    header: object


def _spaced(value: str, rng: random.Random) -> str:
    return rng.choice((f" {value}", f"{value} ", f"  {value}  ", f"{value}  "))


def _render_date(day: date | None, rng: random.Random, p: float) -> Cell:
    if day is None:
        return _render_null(rng, p)
    u = rng.random()
    serial = (day - _EXCEL_EPOCH).days
    if u < p:
        return serial  # a bare serial number, no date format
    if u < 2 * p:
        return day.isoformat()
    return _ExcelDate(serial)


def _render_null(rng: random.Random, p: float) -> Cell:
    u = rng.random()
    if u < 3 * p:
        return "NULL"
    if u < 5 * p:
        return "null"
    return None


def _render_optional(value: str | float | None, rng: random.Random, p: float) -> Cell:
    return _render_null(rng, p) if value is None else value


def _render_line(lines: Lines, i: int, rng: random.Random, p: float) -> tuple[Cell, ...]:
    product = CATALOGUE[lines.entry[i]].name
    if rng.random() < 3 * p:
        product = rng.choice(TAGS) + product
    if rng.random() < p:
        product = _spaced(product, rng)
    customer = lines.customer[i]
    if rng.random() < p:
        customer = _spaced(customer, rng)
    country = lines.country[i]
    if rng.random() < p:
        country = _spaced(country, rng)
    quantity: Cell = lines.quantity[i]
    if rng.random() < p:
        quantity = f" {lines.quantity[i]}"
    price: Cell = lines.price[i]
    if rng.random() < p:
        price = f"{lines.price[i]:,.2f}"
    total: Cell = lines.total_local[i]
    if rng.random() < p:
        total = f"{lines.total_local[i]:,.2f}"
    return (
        lines.invoice_number[i],
        _render_date(lines.invoice_date[i], rng, p),
        _render_date(lines.ship_date[i], rng, p),
        customer,
        country,
        product,
        _render_optional(lines.item_code[i], rng, p),
        quantity,
        lines.currency[i],
        price,
        total,
        _render_optional(lines.tt_discount[i], rng, p),
        _render_optional(lines.discount[i], rng, p),
        _render_optional(lines.delivery_from[i], rng, p),
        _render_optional(lines.ship_to[i], rng, p),
        _render_optional(lines.comments[i], rng, p),
    )


_PI: Final = HEADER.index("PI")
_CUSTOMER: Final = HEADER.index("Customer")
_TOTAL: Final = HEADER.index("Total")
_MONEY_COLUMNS: Final = frozenset({HEADER.index("Price"), _TOTAL})


def _subtotal_row(style: SubtotalStyle, total: float) -> tuple[Cell, ...]:
    row: list[Cell] = [None] * len(HEADER)
    row[_CUSTOMER if style == "customer" else _PI] = "Subtotal" if style == "customer" else "TOTAL"
    row[_TOTAL] = total
    return tuple(row)


def _write_sheet(workbook: object, sheet: Sheet, rng: random.Random, p: float, formats: _Formats) -> None:
    worksheet = workbook.add_worksheet(sheet.name)  # type: ignore[attr-defined]  # xlsxwriter is untyped
    worksheet.freeze_panes(1, 0)
    for col, name in enumerate(HEADER):
        worksheet.write_string(0, col, name, formats.header)
    write_string, write_number = worksheet.write_string, worksheet.write_number
    number_formats = [formats.money if col in _MONEY_COLUMNS else None for col in range(len(HEADER))]
    subtotals = iter(sheet.subtotals)
    for row, code in enumerate(sheet.layout, start=1):
        if code == BLANK_ROW:
            continue
        if code == HEADER_ROW:
            cells: tuple[Cell, ...] = HEADER
        elif code == SUBTOTAL_ROW:
            cells = _subtotal_row(*next(subtotals))
        else:
            cells = _render_line(sheet.lines, code, rng, p)
        for col, value in enumerate(cells):
            if value is None:
                continue
            if type(value) is str:
                write_string(row, col, value)
            elif type(value) is _ExcelDate:
                write_number(row, col, value, formats.date)
            else:
                write_number(row, col, value, number_formats[col])


def write_xlsx(path: Path, sheets: list[Sheet], *, seed: int, mess_share: float, created: datetime) -> None:
    """Write the sheets as a messy .xlsx at path, each rendered from its own stream."""
    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    workbook.set_properties({"created": created})
    formats = _Formats(
        date=workbook.add_format({"num_format": "yyyy-mm-dd"}),
        money=workbook.add_format({"num_format": "#,##0.00"}),
        header=workbook.add_format({"bold": True}),
    )
    for sheet in sheets:
        _write_sheet(workbook, sheet, stream(seed, sheet.name, "render"), mess_share, formats)
    workbook.close()
