"""Rows that are not sales lines: blank rows, repeated headers and subtotals (dropped and counted)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import polars as pl

DROP_REASONS: Final[tuple[str, ...]] = ("blank", "subtotal", "repeated_header")
_SUBTOTAL: Final = r"(?i)^((sub|grand)[ -]?)?total\b"


def drop_reason(
    invoice_number: pl.Expr,
    invoice_date_text: pl.Expr | None,
    customer: pl.Expr,
    product: pl.Expr,
    total_present: pl.Expr,
    contract_cells: Iterable[pl.Expr],
) -> pl.Expr:
    """'blank', 'repeated_header' or 'subtotal' for a row to drop (first that applies), else null."""
    blank = pl.all_horizontal(cell.is_null() for cell in contract_cells)
    repeated_header = invoice_number.str.contains(r"(?i)^PI$")
    if invoice_date_text is not None:
        repeated_header = repeated_header | invoice_date_text.str.contains(r"(?i)^Inv\s*Date$")
    subtotal = (
        customer.str.contains(_SUBTOTAL)
        | invoice_number.str.contains(_SUBTOTAL)
        | (total_present & product.is_null() & customer.is_null() & invoice_number.is_null())
    )
    return (
        pl.when(blank)
        .then(pl.lit("blank"))
        .when(repeated_header.fill_null(value=False))
        .then(pl.lit("repeated_header"))
        .when(subtotal.fill_null(value=False))
        .then(pl.lit("subtotal"))
    )
