-- The storylines' trend: USD at stake per lever, region and quarter (the published snapshot's storylines).
with
-- include: _published_snapshot.sql

final as (
    select
        storylines.quarter,
        storylines.region,
        storylines.lever,
        sum(storylines.usd_at_stake) as usd_at_stake,
        sum(storylines.customers) as customers
    from activation.storylines as storylines
    join published_snapshot using (snapshot_id)
    where storylines.lever <> 'legacy'
    group by storylines.quarter, storylines.region, storylines.lever
)

select * from final
order by quarter, region, lever
