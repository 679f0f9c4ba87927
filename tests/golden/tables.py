"""Every published mart and forecast table, as plain rows, and how two such copies differ.

Hashes would not do: the database may sum a group's floats in another order after a refactor, which
moves the 16th significant digit, and money with 4 decimals sits exactly on rounding boundaries. So the
rows themselves are kept (sorted, run ids left out) and compared value by value, floats to a relative
1e-9. `python tests/golden/tables.py DSN OUT.json.gz` writes them for a database that ran the pipeline.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import json
import math
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
Value = str | float | int | bool | None


def plain(value: Any) -> Value:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value  # type: ignore[no-any-return]


def sort_key(row: list[Value]) -> tuple[str, ...]:
    return tuple(f"{v:.6g}" if isinstance(v, float) else repr(v) for v in row)


def table_copy(columns: list[str], rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    kept = [i for i, name in enumerate(columns) if name not in RUN_COLUMNS]
    plain_rows = [[plain(row[i]) for i in kept] for row in rows]
    return {"columns": [columns[i] for i in kept], "rows": sorted(plain_rows, key=sort_key)}


async def read_tables(dsn: str, tables: tuple[str, ...] = TABLES) -> dict[str, dict[str, Any]]:
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
            result[table] = table_copy(columns, [tuple(row.values()) for row in rows])
        return result
    finally:
        await connection.close()


def same(a: Value, b: Value) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return a == b


def captured(copy: dict[str, Any], columns: list[str]) -> list[list[Value]]:
    """The rows of a table copy reduced to `columns` (in that order), sorted as a copy's rows are."""
    positions = [copy["columns"].index(name) for name in columns]
    return sorted(([row[i] for i in positions] for row in copy["rows"]), key=sort_key)


def differences(before: dict[str, Any], after: dict[str, Any], renamed: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Per table: the captured columns gone (by name, after the renames), or the row counts, or the first changed
    rows. Only the captured columns are compared: a column added since (a mart that tells more) is no difference;
    its values are checked by the tests that added it."""
    found: dict[str, Any] = {}
    for table, old in before.items():
        new = after[table]
        columns = [renamed.get(table, {}).get(name, name) for name in old["columns"]]
        if missing := [name for name in columns if name not in new["columns"]]:
            found[table] = {"columns missing": missing}
        elif len(old["rows"]) != len(new["rows"]):
            found[table] = {"rows": (len(old["rows"]), len(new["rows"]))}
        else:
            changed = [
                (a, b)
                for a, b in zip(old["rows"], captured(new, columns), strict=True)
                if not all(same(x, y) for x, y in zip(a, b, strict=True))
            ]
            if changed:
                found[table] = {"changed_rows": len(changed), "first": changed[:3]}
    return found


def load(path: Path) -> dict[str, Any]:
    with gzip.open(path, "rt") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def save(data: dict[str, Any], path: Path) -> None:
    with gzip.open(path, "wt") as handle:
        json.dump(data, handle, separators=(",", ":"))


if __name__ == "__main__":
    save(asyncio.run(read_tables(sys.argv[1])), Path(sys.argv[2]))
