-- Every value the cleaning could not map or convert, per run: what a person should fix in the mapping
-- tables or the workbook. Written in the same transaction as the run's quality results; the run's
-- marts.ready carries the most frequent ones.
create table ops.unmapped_values (
    run_id       text        not null,
    snapshot_id  text        not null,
    kind         text        not null check (kind in ('unmapped', 'unconvertible')),
    field        text        not null,   -- unmapped: 'country' | 'currency' | 'product'; unconvertible: the column
    value        text,                   -- as cleaned (products upper-cased); null when the cell was blank
    rows         bigint      not null check (rows > 0),
    recorded_at  timestamptz not null default now(),
    unique nulls not distinct (run_id, kind, field, value)
);
create index unmapped_values_snapshot on ops.unmapped_values (snapshot_id);
