with

sales_lines as (

    select * from {{ ref('int_sales_lines_enriched') }}

),

customer_lines as (

    select * from sales_lines
    where is_customer_known

),

snapshot_bounds as (

    select max(quarter) as last_quarter from sales_lines

),

customer_region_quarters as (

    select
        customer,
        region,
        quarter,
        sum(revenue_usd) as revenue_usd

    from customer_lines
    group by customer, region, quarter

),

customer_region_spans as (

    select
        customer,
        region,
        min(quarter) as first_quarter,
        max(quarter) as last_active_quarter

    from customer_region_quarters
    group by customer, region

),

spine as (

    -- Every quarter from the customer's first quarter in the region up to four quarters after its
    -- last active one (so that a lapsed customer shows up as dormant a year later), capped at the
    -- snapshot's last quarter. Quarters are contiguous per customer x region.
    select
        customer_region_spans.customer,
        customer_region_spans.region,
        customer_region_spans.first_quarter,
        quarter_series.quarter::date as quarter

    from customer_region_spans
    cross join snapshot_bounds
    cross join lateral generate_series(
        customer_region_spans.first_quarter,
        least(
            snapshot_bounds.last_quarter,
            (customer_region_spans.last_active_quarter + interval '1 year')::date
        ),
        interval '3 months'
    ) as quarter_series (quarter)

),

customer_quarter_mix as (

    -- What the customer bought (positive quantity) in each quarter, in any region.
    select
        customer,
        quarter,
        bool_or(is_svr_rm and quantity > 0) as bought_svr_rm,
        bool_or(is_svr_desktop and quantity > 0) as bought_svr_desktop,
        bool_or(is_c2 and quantity > 0) as bought_c2,
        bool_or(not is_c2 and quantity > 0) as bought_non_c2

    from customer_lines
    group by customer, quarter

),

customer_history as (

    -- What the customer had bought up to and including each spine quarter.
    select
        spine.customer,
        spine.region,
        spine.quarter,
        coalesce(bool_or(customer_quarter_mix.bought_svr_rm), false) as has_svr_rm,
        coalesce(bool_or(customer_quarter_mix.bought_svr_desktop), false) as has_svr_desktop,
        coalesce(bool_or(customer_quarter_mix.bought_c2), false) as has_c2,
        coalesce(bool_or(customer_quarter_mix.bought_non_c2), false) as has_non_c2

    from spine
    left join customer_quarter_mix
        on customer_quarter_mix.customer = spine.customer
        and customer_quarter_mix.quarter <= spine.quarter
    group by spine.customer, spine.region, spine.quarter

),

joined as (

    select
        spine.quarter,
        spine.region,
        spine.customer,
        spine.first_quarter,
        -- No line that quarter: 0. Lines whose currency is unmapped carry no revenue (null) and add nothing.
        coalesce(customer_region_quarters.revenue_usd, 0) as revenue_usd,
        customer_history.has_svr_rm,
        customer_history.has_svr_desktop,
        customer_history.has_c2,
        customer_history.has_non_c2

    from spine
    left join customer_region_quarters
        on customer_region_quarters.customer = spine.customer
        and customer_region_quarters.region = spine.region
        and customer_region_quarters.quarter = spine.quarter
    inner join customer_history
        on customer_history.customer = spine.customer
        and customer_history.region = spine.region
        and customer_history.quarter = spine.quarter

),

final as (

    select * from joined

)

select * from final
