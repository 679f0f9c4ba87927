-- SVR-RM next-quarter forecast by tier (T1..T5 and TOTAL): point, 80% and 95% intervals, the model chosen and
-- its accuracy on the held-out latest complete quarter against the seasonal-naive baseline.
with
-- include: _published_snapshot.sql

final as (
    select
        forecast.tier,
        forecast.metric,
        forecast.target_quarter,
        forecast.point,
        forecast.lower_80,
        forecast.upper_80,
        forecast.lower_95,
        forecast.upper_95,
        forecast.model,
        forecast.holdout_mape,
        forecast.holdout_smape,
        forecast.holdout_mase,
        forecast.baseline_smape,
        forecast.reason
    from forecast.svr_rm as forecast
    join published_snapshot using (snapshot_id)
    where forecast.cohort = 'overall'
)

select * from final
order by metric, tier
