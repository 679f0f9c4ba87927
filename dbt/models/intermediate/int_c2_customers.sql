with

sales_lines as (

    select * from {{ ref('int_sales_lines_enriched') }}

),

c2_lines as (

    select * from sales_lines
    where is_c2
        and is_customer_known

),

per_customer as (

    select
        customer,
        sum(revenue_usd) as c2_revenue_usd,
        sum(quantity) as c2_quantity,
        min(month) filter (where quantity > 0) as first_c2_month

    from c2_lines
    group by customer

),

ranked as (

    select
        *,
        row_number() over (order by c2_revenue_usd desc nulls last, customer) as c2_revenue_rank

    from per_customer

),

tiered as (

    select
        customer,
        c2_revenue_usd,
        c2_quantity::bigint as c2_quantity,
        first_c2_month,
        c2_revenue_rank,
        case
            when c2_revenue_rank <= 5 then 'Top 5'
            when c2_revenue_rank <= 20 then 'Top 20'
            else 'Long tail'
        end as customer_tier

    from ranked

),

final as (

    select * from tiered

)

select * from final
