with

sales_lines as (

    select * from {{ ref('int_sales_lines_enriched') }}

),

svr_rm_lines as (

    select * from sales_lines
    where is_svr_rm
        and is_customer_known

),

customer_quarters as (

    select
        quarter,
        customer,
        sum(revenue_usd) as revenue_usd

    from svr_rm_lines
    group by quarter, customer

),

quarters as (

    select distinct quarter from customer_quarters

),

trailing_four_quarters as (

    -- Window = the quarter itself and the three before it.
    select
        quarters.quarter,
        customer_quarters.customer,
        sum(customer_quarters.revenue_usd) as trailing_revenue_usd

    from quarters
    inner join customer_quarters
        on customer_quarters.quarter <= quarters.quarter
        and customer_quarters.quarter > (quarters.quarter - interval '1 year')::date
    group by quarters.quarter, customer_quarters.customer

),

ranked as (

    select
        quarter,
        customer,
        trailing_revenue_usd,
        row_number() over (
            partition by quarter
            order by trailing_revenue_usd desc nulls last, customer
        ) as customer_rank

    from trailing_four_quarters

),

final as (

    select * from ranked

)

select * from final
