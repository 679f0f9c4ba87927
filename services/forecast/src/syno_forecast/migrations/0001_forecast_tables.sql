-- Forecast tables and the forecast runs' ops rows.
create schema if not exists forecast;
create table if not exists forecast.svr_rm (
    forecast_run_id text not null, snapshot_id text not null, cohort text not null, tier text not null,
    customer text, target_quarter date not null, metric text not null,
    point double precision not null, lower_80 double precision, upper_80 double precision,
    lower_95 double precision, upper_95 double precision, model text not null, reason text not null,
    holdout_mape double precision, holdout_smape double precision, holdout_mase double precision,
    baseline_smape double precision
);
create table if not exists forecast.c2 (
    forecast_run_id text not null, snapshot_id text not null, cohort text not null, service_family text not null,
    customer text, target_quarter date not null, metric text not null,
    point double precision not null, lower_80 double precision, upper_80 double precision,
    lower_95 double precision, upper_95 double precision, model text not null, reason text not null,
    holdout_mape double precision, holdout_smape double precision, holdout_mase double precision,
    baseline_smape double precision
);
-- Staging for the fan-out: one row per finished batch of a run, until the run's tables are written.
create table if not exists forecast.work_results (
    forecast_run_id text not null, batch_no integer not null, series_count integer not null,
    payload jsonb, error text, worker text not null, seconds double precision not null,
    created_at timestamptz not null default now(),
    primary key (forecast_run_id, batch_no)
);
create table if not exists forecast.sellout (
    forecast_run_id text not null, snapshot_id text not null, cohort text not null, region text not null,
    target_quarter date not null, metric text not null,
    point double precision not null, lower_80 double precision, upper_80 double precision,
    lower_95 double precision, upper_95 double precision, model text not null, reason text not null,
    holdout_mape double precision, holdout_smape double precision, holdout_mase double precision,
    baseline_smape double precision
);
create table if not exists ops.forecast_runs (
    forecast_run_id text primary key, run_id text not null, snapshot_id text not null,
    target_quarter date, series_count integer not null, cohorts jsonb not null, artifact_path text,
    created_at timestamptz not null default now()
);
