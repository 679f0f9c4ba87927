-- A run row left at 'running' by a process that died is closed as 'abandoned' when the stage takes the input again.
alter table ops.stage_runs drop constraint if exists stage_runs_status_check;
alter table ops.stage_runs add constraint stage_runs_status_check
    check (status in ('running', 'succeeded', 'failed', 'retrying', 'skipped', 'abandoned'));
