-- Side effects outside our stores (run summaries, Metabase refreshes, failure alerts) leave through an outbox:
-- a row is written 'pending' in the transaction that records the stage's work, then sent and marked 'sent'.
-- A redelivered or replayed event finds its rows and never sends a 'sent' one again.
create table ops.activation_outbox (
    run_id          text        not null,
    -- What in the run the row is about: '' for the run's summary and refresh; for an alert, the failed input
    -- (pipeline.failed input_reference), since one run can fail more than once.
    reference       text        not null default '',
    snapshot_id     text        not null,
    channel         text        not null,  -- a channel id without secrets, e.g. 'json:3f2a9c0d1e4b5a6f', 'metabase:...'
    kind            text        not null check (kind in ('summary', 'metabase', 'alert')),
    payload         jsonb       not null,  -- what to send (title, body, severity; or the snapshot to refresh)
    status          text        not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    attempts        integer     not null default 0,
    last_error      text,
    next_attempt_at timestamptz not null default now(),  -- a failed attempt is retried no sooner
    created_at      timestamptz not null default now(),
    sent_at         timestamptz,
    primary key (run_id, reference, channel, kind)
);
create index activation_outbox_pending on ops.activation_outbox (next_attempt_at) where status = 'pending';

-- An activation log row is written with the stage's completion ('queued' deliveries) and updated with the
-- delivery results: it needs an id.
alter table ops.activation_log add column activation_log_id bigserial primary key;

-- One alert per failed input: a redelivered pipeline.failed finds its row.
alter table ops.alerts add column input_reference text;
create unique index alerts_failed_input on ops.alerts (run_id, input_reference);
