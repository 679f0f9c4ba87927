-- The stage trail every service writes: one row per stage run, one completion per (snapshot, stage).
create schema if not exists ops;

create table if not exists ops.stage_runs (
    stage_run_id   bigserial primary key,
    run_id         text        not null,
    snapshot_id    text        not null,
    stage          text        not null,
    status         text        not null check (status in ('running', 'succeeded', 'failed', 'retrying', 'skipped')),
    started_at     timestamptz not null default now(),
    finished_at    timestamptz,
    seconds        double precision,
    rows           bigint,
    error_code     text,
    error_message  text,
    delivery       integer     not null default 1,
    details        jsonb       not null default '{}'::jsonb
);
create index if not exists stage_runs_snapshot on ops.stage_runs (snapshot_id, stage);

create table if not exists ops.stage_completions (
    snapshot_id     text        not null,
    stage           text        not null,
    run_id          text        not null,
    completed_at    timestamptz not null default now(),
    output_subject  text        not null,
    output_event    jsonb       not null,
    primary key (snapshot_id, stage)
);
