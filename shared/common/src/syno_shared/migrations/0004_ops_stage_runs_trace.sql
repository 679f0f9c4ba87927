-- The trace of each stage run, so `syno runs show` links a run to its trace in Grafana.
alter table ops.stage_runs add column if not exists trace_id text;
create index if not exists stage_runs_run on ops.stage_runs (run_id);
