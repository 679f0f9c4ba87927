-- Opportunities: the storylines of the current quarter, ranked by USD at stake (one row per storyline).
with
-- include: _published_snapshot.sql

final as (
    select
        storylines.opportunity_rank as rank,
        storylines.region,
        storylines.segment,
        storylines.lever,
        activation.spreadsheet_safe(storylines.recommended_action) as action,  -- safe to export (docs/SECURITY.md)
        storylines.usd_at_stake,
        storylines.confidence,
        storylines.customers,
        storylines.actual_revenue,
        storylines.year_ago_revenue,
        storylines.forecast_revenue,
        storylines.variance_pct,
        storylines.activation_score,
        activation.spreadsheet_safe(storylines.confidence_note) as confidence_note
    from activation.storylines as storylines
    join published_snapshot using (snapshot_id)
    where storylines.is_current_quarter
        [[and storylines.opportunity_rank = {{rank}}]]
)

select * from final
order by rank
