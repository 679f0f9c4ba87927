-- Liveness another process can read: the share watcher's heartbeat, one row per component (whichever replica
-- beat last), written every few seconds by ingestion; activation pages a person when it goes stale.
create table ops.heartbeats (
    component  text        primary key,                 -- e.g. 'ingestion.watcher'
    instance   text        not null,                    -- host and process id of the replica that beat last
    beat_at    timestamptz not null,                    -- when the watcher last listed the share
    details    jsonb       not null default '{}'::jsonb -- what it reports beside: is_paused, files_waiting
);

-- Cron-style schedules the services run themselves (syno_shared.schedules): one row per schedule with its
-- cron, last and next tick, and one row per tick that fired. The (schedule, tick) key is how two replicas
-- racing for the same tick fire it once.
create table ops.schedules (
    schedule         text        primary key,  -- e.g. 'transform.reforecast', 'activation.freshness'
    service          text        not null,
    cron             text        not null,
    timezone         text        not null,
    registered_at    timestamptz not null default now(),  -- ticks before this are never fired
    next_tick        timestamptz,
    last_tick        timestamptz,
    last_status      text,
    last_detail      text,
    last_finished_at timestamptz
);
create table ops.schedule_runs (
    schedule    text        not null,
    tick        timestamptz not null,
    instance    text        not null,  -- the replica that fired it
    status      text        not null check (status in ('running', 'succeeded', 'failed')),
    started_at  timestamptz not null default now(),
    finished_at timestamptz,
    detail      text,
    primary key (schedule, tick)
);
