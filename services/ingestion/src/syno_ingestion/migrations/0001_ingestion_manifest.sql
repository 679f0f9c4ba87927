-- ops tables owned by ingestion: accepted snapshots and every file seen.
create table if not exists ops.ingestion_manifest (
    snapshot_id       text primary key,
    run_id            text        not null,
    file_name         text        not null,
    stored_path       text        not null,
    size_bytes        bigint      not null,
    delta             jsonb       not null,
    sheets            jsonb       not null,
    cell_errors       jsonb       not null,  -- sheet -> cells fastexcel could not convert (listed, not lost)
    contract_version  text        not null,
    mapping_versions  jsonb       not null,
    timings           jsonb       not null,
    accepted_at       timestamptz not null default now()
);
create table if not exists ops.ingestion_files (
    file_event_id  bigserial primary key,
    file_name      text        not null,
    snapshot_id    text,
    size_bytes     bigint,
    outcome        text        not null check (outcome in ('accepted', 'duplicate', 'quarantined')),
    reason_code    text,
    message        text,
    stored_path    text,
    seen_at        timestamptz not null default now()
);
