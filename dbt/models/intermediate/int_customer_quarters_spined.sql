{#- A table, not a view: the grid is read by commercial_activation_snapshot and by its key test,
    and recomputing it for each cost seconds per 100k lines. -#}
{{ config(materialized='table') }}

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
        sum(revenue_usd) as revenue_usd,
        sum(revenue_usd) filter (where is_c2) as c2_revenue_usd,
        -- The quarter's last order: the latest invoice with a positive quantity (a return is no order).
        max(invoice_date) filter (where quantity > 0) as last_order_date_in_quarter

    from customer_lines
    group by customer, region, quarter

),

customer_region_countries as (

    -- The customer's country in the region: the one its lines there brought the most revenue over the
    -- snapshot (unknown revenue counts as 0), ties by country name.
    select distinct on (customer, region)
        customer,
        region,
        country

    from customer_lines
    group by customer, region, country
    order by customer, region, coalesce(sum(revenue_usd), 0) desc, country

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

customer_firsts as (

    -- When the customer first bought (positive quantity, any region) each kind of product.
    select
        customer,
        min(quarter) filter (where is_svr_rm and quantity > 0) as first_svr_rm_quarter,
        min(quarter) filter (where is_svr_desktop and quantity > 0) as first_svr_desktop_quarter,
        min(quarter) filter (where is_c2 and quantity > 0) as first_c2_quarter,
        min(quarter) filter (where not is_c2 and quantity > 0) as first_non_c2_quarter

    from customer_lines
    group by customer

),

joined as (

    select
        spine.quarter,
        spine.region,
        spine.customer,
        spine.first_quarter,
        -- No line that quarter: 0. Lines whose currency is unmapped carry no revenue (null) and add nothing.
        coalesce(customer_region_quarters.revenue_usd, 0) as revenue_usd,
        coalesce(customer_region_quarters.c2_revenue_usd, 0) as c2_revenue_usd,
        customer_region_countries.country,
        -- The latest order in the region up to the end of the quarter (null before the first one).
        max(customer_region_quarters.last_order_date_in_quarter) over (
            partition by spine.customer, spine.region order by spine.quarter
        ) as last_order_date,
        -- What the customer had bought (any region) up to and including the quarter.
        coalesce(customer_firsts.first_svr_rm_quarter <= spine.quarter, false) as has_svr_rm,
        coalesce(customer_firsts.first_svr_desktop_quarter <= spine.quarter, false) as has_svr_desktop,
        coalesce(customer_firsts.first_c2_quarter <= spine.quarter, false) as has_c2,
        coalesce(customer_firsts.first_non_c2_quarter <= spine.quarter, false) as has_non_c2

    from spine
    left join customer_region_quarters
        on customer_region_quarters.customer = spine.customer
        and customer_region_quarters.region = spine.region
        and customer_region_quarters.quarter = spine.quarter
    inner join customer_firsts
        on customer_firsts.customer = spine.customer
    inner join customer_region_countries
        on customer_region_countries.customer = spine.customer
        and customer_region_countries.region = spine.region

),

final as (

    select * from joined

)

select * from final
