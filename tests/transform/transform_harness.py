"""A database of the test's own, loaded and built the way the transform does it: cleaning, COPY load,
the project's own `dbt build` (fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import polars as pl

from syno_shared import db
from syno_transform import publication, warehouse
from syno_transform.cleaning import clean_sales
from syno_transform.dbt_runner import DbtBuild, WarmDbt
from syno_transform.reference import load_reference


@dataclass
class DbtWarehouse:
    """A database with every ops and transform migration applied, and a warm dbt pointed at it."""

    dsn: str
    mapping_dir: Path
    dbt: WarmDbt

    def load_sheets(self, snapshot_id: str, sheets: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
        """Clean each sheet (name -> frame as ingestion writes it) and load the lines and mappings."""
        reference = load_reference(self.mapping_dir)
        lines = pl.concat(
            [
                clean_sales(sheet, sheet_name=name, snapshot_id=snapshot_id, reference=reference).lines
                for name, sheet in sheets.items()
            ]
        )

        async def load() -> None:
            connection = await asyncpg.connect(self.dsn)
            try:
                async with connection.transaction():
                    await warehouse.load_reference(connection, reference)
                    await warehouse.replace_snapshot_lines(connection, snapshot_id, lines)
            finally:
                await connection.close()

        asyncio.run(load())
        return lines

    def build(self, snapshot_id: str, top_customers: int = 20) -> DbtBuild:
        build = self.dbt.build(snapshot_id, {"top_customers": top_customers})
        assert build.is_success, (build.failed_nodes, build.error)
        return build

    def execute(self, statement: str) -> None:
        asyncio.run(self._with_connection(lambda connection: connection.execute(statement)))

    def publish(self, build_id: str, marts: list[str]) -> None:
        """Record a build as the transform does and point the stable names at it (one transaction)."""

        async def publish(connection: asyncpg.Connection) -> None:
            await publication.start_build(
                connection,
                build_id=build_id,
                snapshot_id=build_id,
                run_id=build_id,
                data_freshness=None,
                landed_at=datetime.now(UTC),
                rows_loaded=0,
            )
            async with connection.transaction():
                await publication.finish_build(connection, build_id, is_passed=True, marts=marts)
                previous = await publication.published_build(connection)
                await publication.publish(
                    connection, build_id=build_id, marts=marts, publication="published", previous=previous
                )

        asyncio.run(self._with_connection(publish))

    async def _with_connection(self, use: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        connection = await asyncpg.connect(self.dsn)
        try:
            return await use(connection)
        finally:
            await connection.close()

    def fetch(self, query: str, *args: Any) -> pl.DataFrame:
        async def fetch() -> pl.DataFrame:
            connection = await asyncpg.connect(self.dsn)
            try:
                return await db.fetch_frame(connection, query, *args)
            finally:
                await connection.close()

        return asyncio.run(fetch())
