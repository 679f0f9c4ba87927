-- Data freshness: what the published marts hold, and whether forecasts and storylines exist for it.
with
-- include: _published_snapshot.sql

forecasts as (
    select max(target_quarter) as forecast_quarter, count(*) as forecast_rows
    from forecast.svr_rm
    where snapshot_id in (select snapshot_id from published_snapshot)
),

storylines as (
    select count(*) as storylines, max(quarter) filter (where is_current_quarter) as storyline_quarter
    from activation.storylines
    where snapshot_id in (select snapshot_id from published_snapshot)
),

final as (
    select
        (select snapshot_head from published_build) as published_build,
        (select min(snapshot_id) from published_snapshot) as snapshot_id,
        (select max(quarter) from marts.sellout_quarterly) as latest_sellout_quarter,
        (select max(month) from marts.c2_adoption_scorecard) as latest_c2_month,
        forecasts.forecast_quarter,
        forecasts.forecast_rows,
        storylines.storyline_quarter,
        storylines.storylines
    from forecasts cross join storylines
)

select * from final
