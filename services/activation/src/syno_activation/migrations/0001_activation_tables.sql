-- Storylines and the activation/alert logs.
create schema if not exists activation;
create table if not exists activation.storylines (
    snapshot_id text not null, quarter date not null, region text not null, segment text not null,
    actual_revenue double precision, forecast_revenue double precision, variance_pct double precision,
    activation_score double precision not null, recommended_action text not null, confidence_note text not null,
    primary key (snapshot_id, quarter, region, segment)
);
create table if not exists ops.activation_log (
    run_id text not null, snapshot_id text not null, storylines integer not null,
    dashboards jsonb not null, notifications jsonb not null, catalog jsonb,
    recorded_at timestamptz not null default now()
);
create table if not exists ops.alerts (
    run_id text not null, snapshot_id text not null, stage text not null, reason_code text not null,
    message text not null, notifications jsonb not null, recorded_at timestamptz not null default now()
);
