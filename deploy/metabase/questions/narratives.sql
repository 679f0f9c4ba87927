-- Narratives: each region's story of the current quarter, and one line per top customer and segment.
with
-- include: _published_snapshot.sql

final as (
    select
        storylines.region,
        storylines.segment,
        -- safe to export (docs/SECURITY.md): a narrative may start with a customer's name
        activation.spreadsheet_safe(max(storylines.region_narrative)) as region_narrative,
        activation.spreadsheet_safe(max(storylines.customer_narratives)) as customer_narratives,
        sum(storylines.usd_at_stake) as usd_at_stake
    from activation.storylines as storylines
    join published_snapshot using (snapshot_id)
    where storylines.is_current_quarter
    group by storylines.region, storylines.segment
)

select * from final
order by region, usd_at_stake desc nulls last
