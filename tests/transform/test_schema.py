"""raw.sales_lines as the migrations make it is the table the cleaning's schema describes."""

from __future__ import annotations

import asyncio
import json
from datetime import date

import asyncpg
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from transform_harness import DbtWarehouse

from syno_shared import db
from syno_transform import warehouse
from syno_transform.cleaning import clean_sales
from syno_transform.reference import load_reference
from syno_transform.schema import SALES_LINES_SCHEMA, postgres_columns

pytestmark = pytest.mark.integration


def test_the_migrated_table_has_the_schema_columns_with_their_types(dbt_warehouse: DbtWarehouse) -> None:
    """Column by column and type by type, in both directions: no column missing, none extra."""
    live = dbt_warehouse.fetch(
        "select column_name, data_type from information_schema.columns"
        " where table_schema = 'raw' and table_name = 'sales_lines' order by ordinal_position"
    )

    assert dict(live.rows()) == postgres_columns()


def test_cleaned_lines_load_and_read_back_unchanged(dbt_warehouse: DbtWarehouse) -> None:
    """A cleaned sheet COPYs into the live table and comes back value for value (extras as JSON)."""
    sheet = pl.DataFrame(
        {
            "PI": ["INV-1", "INV-2"],
            "InvDate": [date(2024, 3, 5), None],
            "Customer": ["Acme GmbH", "Çafé Ltd"],
            "Country": ["Germany", "Narnia"],
            "Product": ["(NFR) RS822+", "C2_BACKUP_BUSINESS_1T"],
            "Quantity": [2, -1],
            "Currency": ["EUR", "GBP"],
            "Total": [1000.5, -20.0],
            "Region note": ["north", None],
        }
    )
    lines = clean_sales(
        sheet, sheet_name="2024", snapshot_id="snap-1", reference=load_reference(dbt_warehouse.mapping_dir)
    ).lines

    async def round_trip() -> pl.DataFrame:
        connection = await asyncpg.connect(dbt_warehouse.dsn)
        try:
            await warehouse.replace_snapshot_lines(connection, "snap-1", lines)
            columns = ", ".join(SALES_LINES_SCHEMA)
            return await db.fetch_frame(
                connection, f"select {columns} from raw.sales_lines order by source_row", schema=SALES_LINES_SCHEMA
            )
        finally:
            await connection.close()

    loaded = asyncio.run(round_trip())

    assert_frame_equal(loaded.drop("extras"), lines.drop("extras"))
    assert [None if text is None else json.loads(text) for text in loaded["extras"]] == [{"Region note": "north"}, None]
