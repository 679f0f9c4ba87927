-- ops tables owned by transform: quality-gate results and lineage per model.
create table if not exists ops.quality_results (
    run_id       text        not null,
    snapshot_id  text        not null,
    gate         text        not null,
    severity     text        not null,
    passed       boolean     not null,
    observed     double precision,
    threshold    double precision,
    detail       text        not null,
    recorded_at  timestamptz not null default now(),
    primary key (run_id, gate)
);
create table if not exists ops.lineage (
    run_id              text        not null,
    snapshot_id         text        not null,
    model               text        not null,
    rows                bigint,
    freshness           date,
    dbt_invocation_id   text        not null,
    mapping_versions    jsonb       not null,
    recorded_at         timestamptz not null default now(),
    primary key (run_id, model)
);
