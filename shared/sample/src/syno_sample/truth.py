"""The truth: one clean row per real sales line, named and typed as raw.sales_lines, with what a
correct cleaner must derive from the workbook (the classification, the region, revenue in USD)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from syno_sample.catalogue import CATALOGUE
from syno_sample.lines import Sheet
from syno_sample.mapping import UNMAPPED_REGION, read_rates, read_regions
from syno_transform.schema import SALES_LINES_SCHEMA

TRUTH_COLUMNS: Final[tuple[str, ...]] = (
    "source_sheet", "source_row", "invoice_number", "invoice_date", "ship_date", "customer", "country",
    "region", "product", "item_code", "product_type", "sub_cat", "tier", "c2_service_family",
    "c2_capacity", "c2_plan", "quantity", "currency", "price", "discount", "tt_discount",
    "total_local", "revenue_usd", "delivery_from", "ship_to", "comments",
)  # fmt: skip
"""The true lines carry these raw.sales_lines columns, named and typed as the table is (one home: its schema)."""

_TRUTH_SCHEMA: Final = {
    name: SALES_LINES_SCHEMA[name] for name in TRUTH_COLUMNS if name not in ("region", "revenue_usd")
}


def truth_frame(sheets: list[Sheet], mapping_dir: Path) -> pl.DataFrame:
    regions = read_regions(mapping_dir)
    rates = read_rates(mapping_dir)
    frames = []
    for sheet in sheets:
        lines = sheet.lines
        entries = [CATALOGUE[k] for k in lines.entry]
        sheet_rows = [row for row, code in enumerate(sheet.layout, start=1) if code >= 0]
        frames.append(
            pl.DataFrame(
                {
                    "source_sheet": [sheet.name] * len(entries),
                    "source_row": sheet_rows,
                    "invoice_number": lines.invoice_number,
                    "invoice_date": lines.invoice_date,
                    "ship_date": lines.ship_date,
                    "customer": lines.customer,
                    "country": lines.country,
                    "product": [e.product for e in entries],
                    "item_code": lines.item_code,
                    "product_type": [e.product_type for e in entries],
                    "sub_cat": [e.sub_cat for e in entries],
                    "tier": [e.tier for e in entries],
                    "c2_service_family": [e.c2_service_family for e in entries],
                    "c2_capacity": [e.c2_capacity for e in entries],
                    "c2_plan": [e.c2_plan for e in entries],
                    "quantity": lines.quantity,
                    "currency": lines.currency,
                    "price": lines.price,
                    "discount": lines.discount,
                    "tt_discount": lines.tt_discount,
                    "total_local": lines.total_local,
                    "delivery_from": lines.delivery_from,
                    "ship_to": lines.ship_to,
                    "comments": lines.comments,
                },
                schema=_TRUTH_SCHEMA,
            )
        )
    truth = pl.concat(frames) if frames else pl.DataFrame(schema=_TRUTH_SCHEMA)
    return truth.with_columns(
        pl.col("country").replace_strict(regions, default=UNMAPPED_REGION, return_dtype=pl.String).alias("region"),
        (pl.col("currency").replace_strict(rates, default=None, return_dtype=pl.Float64) * pl.col("total_local")).alias(
            "revenue_usd"
        ),
    ).select(TRUTH_COLUMNS)
