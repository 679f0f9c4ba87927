with

sales_lines as (

    select * from {{ ref('int_sales_lines_enriched') }}

),

svr_rm_lines as (

    select * from sales_lines
    where is_svr_rm

),

quarter_bounds as (

    select
        (select min(quarter) from svr_rm_lines) as first_quarter,
        (select max(quarter) from sales_lines) as last_quarter

),

quarters as (

    select quarter_series.quarter::date as quarter
    from quarter_bounds
    cross join lateral generate_series(
        quarter_bounds.first_quarter, quarter_bounds.last_quarter, interval '3 months'
    ) as quarter_series (quarter)

),

tiers as (

    select distinct tier from svr_rm_lines

),

spine as (

    -- Every tier seen in the snapshot, in every quarter from the first SVR-RM sale to the snapshot's
    -- last quarter, so each tier is a gap-free series (0 where nothing was sold).
    select
        quarters.quarter,
        tiers.tier

    from quarters
    cross join tiers

),

aggregated as (

    select
        quarter,
        tier,
        sum(quantity) as quantity,
        sum(revenue_usd) as revenue_usd

    from svr_rm_lines
    group by quarter, tier

),

joined as (

    select
        spine.quarter,
        spine.tier,
        coalesce(aggregated.quantity, 0)::bigint as quantity,
        -- 0 for a quarter without sales; null only when every line of the cell has an unmapped currency.
        (case when aggregated.quarter is null then 0 else aggregated.revenue_usd end)::double precision
            as revenue_usd

    from spine
    left join aggregated
        on aggregated.quarter = spine.quarter
        and aggregated.tier is not distinct from spine.tier

),

final as (

    select * from joined

)

select * from final
