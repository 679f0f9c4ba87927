-- Publication (DESIGN.md section 5): every snapshot is built aside, in schemas of its own
-- (b_<12 hex of the snapshot>_<8 hex>_staging / _intermediate / _marts), tested and gated there, and only
-- then published: the stable names marts.<mart>, the ones BI tools read, are views the transform points at
-- the build in one transaction with the rows below, the lineage and the stage completion.

-- The stable names. Until the first publication they may still be the tables dbt used to build in place;
-- the first publication replaces them with views (in its transaction), so nothing changes before it.
create schema if not exists marts;

-- One row per build: what it was built from, whether it passed every dbt test and quality gate, and when
-- its schemas were dropped (builds kept for rollback and for readers downstream stay).
create table ops.snapshot_builds (
    build_id        text        primary key check (build_id ~ '^b_[0-9a-f]{12}_[0-9a-f]{8}$'),
    snapshot_id     text        not null,
    run_id          text        not null,
    status          text        not null check (status in ('building', 'passed', 'failed')),
    data_freshness  date,                   -- latest invoice date of the snapshot: newest data wins
    landed_at       timestamptz not null,   -- when its workbook landed: the tie-break
    rows_loaded     bigint      not null,   -- cleaned lines: the baseline of the next row-count gate
    marts           text[]      not null default '{}',  -- the marts the build holds (table names)
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    dropped_at      timestamptz
);
create index snapshot_builds_snapshot on ops.snapshot_builds (snapshot_id, finished_at desc);

-- One row per publication, newest last: the current one is the row with the largest publication_id.
-- publication: 'published' (newest data), 'published_forced' (an older snapshot an operator replayed with
-- force) or 'rollback' (`syno publish SNAPSHOT` pointed the stable names back at a kept build).
create table ops.published_snapshot (
    publication_id        bigint      generated always as identity primary key,
    snapshot_id           text        not null,
    run_id                text        not null,
    build_id              text        not null references ops.snapshot_builds (build_id),
    publication           text        not null check (publication in ('published', 'published_forced', 'rollback')),
    published_at          timestamptz not null default now(),
    previous_snapshot_id  text,
    previous_build_id     text
);

-- Lineage names the build each mart's rows live in.
alter table ops.lineage add column build_id text;
