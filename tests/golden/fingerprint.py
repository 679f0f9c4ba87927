"""Fingerprints of the published tables, to prove a refactor leaves every number where it was.

A table's fingerprint is its row count and a sha256 per column over the sorted, normalised values
(floats rounded to 4 decimals, so a different summation order in the database does not count as a
change), plus one over whole rows. Columns that name a run (ids, timestamps, paths) are left out.
`python tests/golden/fingerprint.py DSN OUT.json` writes them for a database that ran the pipeline.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

TABLES = (
    "marts.sellout_quarterly",
    "marts.svr_rm_quarterly",
    "marts.svr_rm_customer_quarterly",
    "marts.c2_adoption_scorecard",
    "marts.commercial_activation_snapshot",
    "forecast.svr_rm",
    "forecast.c2",
    "forecast.sellout",
)
RUN_COLUMNS = {"forecast_run_id", "snapshot_id", "run_id", "created_at", "published_at", "artifact_path"}


def normalise(value: Any) -> str:
    if isinstance(value, float | Decimal):
        return f"{float(value):.4f}"
    return "" if value is None else str(value)


def fingerprint(columns: list[str], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    kept = [i for i, name in enumerate(columns) if name not in RUN_COLUMNS]
    table = [tuple(normalise(row[i]) for i in kept) for row in rows]
    digest = hashlib.sha256("\n".join("\t".join(row) for row in sorted(table)).encode()).hexdigest()
    return {
        "columns": [columns[i] for i in kept],
        "rows": len(table),
        "sha256": digest,
        "column_sha256": [
            hashlib.sha256("\n".join(sorted(row[j] for row in table)).encode()).hexdigest() for j in range(len(kept))
        ],
    }


async def table_fingerprints(dsn: str, tables: tuple[str, ...] = TABLES) -> dict[str, dict[str, Any]]:
    connection = await asyncpg.connect(dsn)
    try:
        result = {}
        for table in tables:
            schema, name = table.split(".")
            columns = [
                row[0]
                for row in await connection.fetch(
                    "select column_name from information_schema.columns where table_schema = $1 and table_name = $2"
                    " order by ordinal_position",
                    schema,
                    name,
                )
            ]
            rows = await connection.fetch(f"select * from {table}")
            result[table] = fingerprint(columns, [tuple(row.values()) for row in rows])
        return result
    finally:
        await connection.close()


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(asyncio.run(table_fingerprints(sys.argv[1])), indent=1) + "\n")
