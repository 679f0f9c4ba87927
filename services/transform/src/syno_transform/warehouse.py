"""The transform's database edge: raw and ref tables, COPY loads, mart reads, the run's ops rows."""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg
import polars as pl

from syno_shared import bus, db
from syno_shared.events import MartsReady, QualityGateResult
from syno_transform.reference import Reference

REF_TABLES = {
    "countries": ["country", "region"],
    "exchange_rates": ["currency", "rate_to_usd"],
    "device_to_bay": ["product", "bays"],
    "product_rules": ["stage", "order", "when_type", "pattern", "and_pattern", "type", "sub_cat"],
    "c2_keywords": ["field", "order", "keyword", "value"],
}
MART_QUARTER_TOTALS_SCHEMA = pl.Schema({"quarter": pl.Date, "revenue_usd": pl.Float64})


# --- before dbt: the snapshot's lines and the mappings ---------------------------------------------


async def previous_snapshot_rows(pool: asyncpg.Pool, snapshot_id: str) -> int | None:
    """Rows of the last snapshot (another one) the transform finished, the baseline of the row-count gate."""
    rows: int | None = await pool.fetchval(
        "select rows from ops.stage_runs where stage = 'transform' and status = 'succeeded'"
        " and snapshot_id <> $1 order by finished_at desc limit 1",
        snapshot_id,
    )
    return rows


async def load_snapshot(pool: asyncpg.Pool, reference: Reference, snapshot_id: str, lines: pl.DataFrame) -> None:
    """The mappings and the snapshot's lines, in one transaction."""
    async with pool.acquire() as connection, connection.transaction():
        await load_reference(connection, reference)
        await replace_snapshot_lines(connection, snapshot_id, lines)


async def load_reference(connection: asyncpg.Connection, reference: Reference) -> None:
    """Replace ref.* with the current mapping files and record their versions (content hashes)."""
    for table, columns in REF_TABLES.items():
        await connection.execute(f"truncate ref.{table}")
        await db.copy_frame(connection, "ref", table, getattr(reference, table).select(columns))
    rows = reference.row_counts
    for file_name, sha256 in reference.versions.items():
        await connection.execute(
            "insert into ref.mapping_versions (file_name, sha256, rows) values ($1, $2, $3)"
            " on conflict (file_name, sha256) do nothing",
            file_name,
            sha256,
            rows.get(file_name, 0),
        )


async def replace_snapshot_lines(connection: asyncpg.Connection, snapshot_id: str, lines: pl.DataFrame) -> int:
    """Loading a snapshot again replaces its rows: delete + COPY in the caller's transaction."""
    await connection.execute("delete from raw.sales_lines where snapshot_id = $1", snapshot_id)
    await db.copy_frame(connection, "raw", "sales_lines", lines)
    # Fresh statistics before dbt reads the rows: without them the planner guesses a handful of
    # rows and picks nested loops; at 200k lines a warm dbt build went from 20.7 s to 9.1 s.
    await connection.execute("analyze raw.sales_lines")
    return lines.height


# --- after dbt: what the marts hold --------------------------------------------------------------


async def mart_quarter_totals(pool: asyncpg.Pool) -> pl.DataFrame:
    """USD revenue per quarter in marts.sellout_quarterly (what the reconciliation gate compares)."""
    return await db.fetch_frame(
        pool,
        "select quarter, sum(revenue_usd)::float8 as revenue_usd from marts.sellout_quarterly group by quarter",
        schema=MART_QUARTER_TOTALS_SCHEMA,
    )


async def mart_row_counts(pool: asyncpg.Pool, marts: Sequence[str]) -> dict[str, int]:
    """'<schema>.<table>' -> its rows, for each mart named."""
    counts = {}
    for mart in marts:
        schema, table = mart.split(".", 1)
        counts[mart] = int(await pool.fetchval(f"select count(*) from {_quoted(schema)}.{_quoted(table)}"))
    return counts


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# --- the run's ops rows --------------------------------------------------------------------------


async def record_run(
    pool: asyncpg.Pool,
    ready: MartsReady,
    *,
    unmapped: pl.DataFrame,
    unconvertible: pl.DataFrame,
    mapping_versions: dict[str, str],
    is_published: bool,
    keep_snapshots: int,
) -> int:
    """One transaction: the quality results and the unmapped values, always; when the run is published, also
    its lineage, the stage completion holding marts.ready, and the pruning of old raw snapshots (rows pruned)."""
    async with pool.acquire() as connection, connection.transaction():
        await record_quality(connection, ready.run_id, ready.snapshot_id, ready.quality.quality_gates)
        await record_unmapped_values(connection, ready.run_id, ready.snapshot_id, unmapped, unconvertible)
        if not is_published:
            return 0
        await record_lineage(connection, ready, mapping_versions)
        await db.record_completion(
            connection,
            snapshot_id=ready.snapshot_id,
            stage="transform",
            run_id=ready.run_id,
            subject=bus.MARTS_READY,
            event_json=ready.model_dump_json(),
        )
        return await prune_snapshots(connection, keep=keep_snapshots)


async def record_quality(
    connection: asyncpg.Connection, run_id: str, snapshot_id: str, results: Sequence[QualityGateResult]
) -> None:
    await connection.executemany(
        "insert into ops.quality_results (run_id, snapshot_id, gate, severity, passed, observed, threshold, detail)"
        " values ($1, $2, $3, $4, $5, $6, $7, $8)"
        " on conflict (run_id, gate) do update set passed = excluded.passed, observed = excluded.observed,"
        " detail = excluded.detail",
        [(run_id, snapshot_id, r.name, r.severity, r.passed, r.observed, r.threshold, r.detail) for r in results],
    )


async def record_unmapped_values(
    connection: asyncpg.Connection,
    run_id: str,
    snapshot_id: str,
    unmapped: pl.DataFrame,
    unconvertible: pl.DataFrame,
) -> None:
    """Every unmapped value (field, value, rows) and unconvertible cell (column, value, rows) of the run."""
    await connection.execute("delete from ops.unmapped_values where run_id = $1", run_id)
    run = (pl.lit(run_id).alias("run_id"), pl.lit(snapshot_id).alias("snapshot_id"))
    kinds = {"unmapped": unmapped, "unconvertible": unconvertible.rename({"column": "field"})}
    rows = pl.concat(
        [counts.select(*run, pl.lit(kind).alias("kind"), "field", "value", "rows") for kind, counts in kinds.items()]
    )
    await db.copy_frame(connection, "ops", "unmapped_values", rows)


async def record_lineage(connection: asyncpg.Connection, ready: MartsReady, mapping_versions: dict[str, str]) -> None:
    """One row per mart: its rows, the data freshness, the dbt invocation and the mapping versions."""
    await connection.executemany(
        "insert into ops.lineage (run_id, snapshot_id, model, rows, freshness, dbt_invocation_id, mapping_versions)"
        " values ($1, $2, $3, $4, $5, $6, $7::jsonb)"
        " on conflict (run_id, model) do update set rows = excluded.rows",
        [
            (
                ready.run_id,
                ready.snapshot_id,
                model,
                count,
                ready.data_freshness,
                ready.dbt_invocation_id,
                json.dumps(mapping_versions),
            )
            for model, count in ready.mart_rows.items()
        ],
    )


async def prune_snapshots(connection: asyncpg.Connection, keep: int) -> int:
    """Keep the `keep` most recently loaded snapshots in raw for audit; drop older ones."""
    result: str = await connection.execute(
        "delete from raw.sales_lines where snapshot_id in ("
        " select snapshot_id from ops.stage_completions where stage = 'transform'"
        " order by completed_at desc offset $1)",
        keep,
    )
    return int(result.split()[-1])
