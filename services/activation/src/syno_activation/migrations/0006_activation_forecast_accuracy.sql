-- Forecast accuracy over time: each forecast run's holdout sMAPE per cohort, as forecast.published told
-- activation, so that the next run is compared with the previous published one (syno_activation.accuracy).
-- A run's figures never change: a replay finds its rows and keeps them (and their recorded_at).
create table activation.forecast_accuracy (
    forecast_run_id text             not null,
    cohort          text             not null,
    run_id          text             not null,
    snapshot_id     text             not null,
    target_quarter  date,
    series_count    integer          not null,
    holdout_smape   double precision,
    baseline_smape  double precision,
    is_published    boolean          not null,
    recorded_at     timestamptz      not null default now(),
    primary key (forecast_run_id, cohort)
);
-- The previous published run: the latest recorded before a given one.
create index forecast_accuracy_published on activation.forecast_accuracy (recorded_at) where is_published;
