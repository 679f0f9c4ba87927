with

sales_lines as (

    select * from {{ ref('int_sales_lines_enriched') }}

),

c2_customers as (

    select * from {{ ref('int_c2_customers') }}

),

c2_lines as (

    select * from sales_lines
    where is_c2

),

joined as (

    select
        c2_lines.month,
        c2_lines.quarter,
        c2_lines.c2_service_family,
        c2_lines.c2_plan,
        c2_lines.region,
        coalesce(c2_customers.customer_tier, 'Long tail') as customer_tier,
        c2_lines.customer,
        c2_lines.is_customer_known,
        c2_lines.invoice_number,
        c2_lines.quantity,
        c2_lines.revenue_usd,
        c2_lines.month = c2_customers.first_c2_month as is_first_c2_month

    from c2_lines
    left join c2_customers
        on c2_customers.customer = c2_lines.customer

),

aggregated as (

    select
        month,
        quarter,
        c2_service_family,
        c2_plan,
        region,
        customer_tier,
        count(distinct customer) filter (
            where quantity > 0 and is_customer_known
        )::bigint as active_customers,
        count(distinct invoice_number) filter (
            where quantity > 0 and is_first_c2_month
        )::bigint as new_orders,
        sum(revenue_usd)::double precision as revenue_usd,
        sum(quantity)::bigint as quantity

    from joined
    group by month, quarter, c2_service_family, c2_plan, region, customer_tier

),

with_seats as (

    select
        *,
        (quantity::double precision / nullif(active_customers, 0))::double precision as avg_seats

    from aggregated

),

final as (

    select * from with_seats

)

select * from final
