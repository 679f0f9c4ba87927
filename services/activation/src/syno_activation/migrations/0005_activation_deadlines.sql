-- Deadlines that page a person (syno_activation.deadlines): one row per occurrence of something late, opened
-- when its alert is queued in the outbox and resolved when it clears. The key is how a restart or a second
-- replica finds the occurrence already alerted and sends nothing.
create table ops.deadline_alerts (
    deadline    text        not null
        check (deadline in ('workbook_not_activated', 'no_workbook', 'watcher_heartbeat', 'dead_letters')),
    occurrence  text        not null,  -- what makes it this occurrence: a snapshot id, a last beat, a sequence
    snapshot_id text,
    stage       text,                  -- the stuck stage, for a workbook not activated
    title       text        not null,
    detail      text        not null,
    opened_at   timestamptz not null default now(),
    resolved_at timestamptz,
    primary key (deadline, occurrence)
);
create index deadline_alerts_open on ops.deadline_alerts (opened_at) where resolved_at is null;
