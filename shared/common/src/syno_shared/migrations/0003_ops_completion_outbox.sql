-- A stage's completion is its outbox: the event it must publish, under which message id and headers,
-- and when it was published. A process that dies between the commit and the publish leaves published_at
-- null; the reconciler every service runs publishes it (the same message id, so never twice).
alter table ops.stage_completions add column if not exists message_id text;
alter table ops.stage_completions add column if not exists headers jsonb not null default '{}'::jsonb;
alter table ops.stage_completions add column if not exists published_at timestamptz;
update ops.stage_completions set message_id = output_subject || ':' || snapshot_id, published_at = completed_at
    where message_id is null;
alter table ops.stage_completions alter column message_id set not null;
create index if not exists stage_completions_unpublished on ops.stage_completions (completed_at)
    where published_at is null;
