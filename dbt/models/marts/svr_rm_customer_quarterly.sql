with

sales_lines as (

    select * from {{ ref('int_sales_lines_enriched') }}

),

customer_ranks as (

    select * from {{ ref('int_svr_rm_customer_ranks') }}

),

svr_rm_lines as (

    select * from sales_lines
    where is_svr_rm
        and is_customer_known

),

aggregated as (

    select
        quarter,
        customer,
        tier,
        sum(quantity) as quantity,
        sum(revenue_usd) as revenue_usd

    from svr_rm_lines
    group by quarter, customer, tier

),

joined as (

    select
        aggregated.quarter,
        aggregated.customer,
        aggregated.tier,
        aggregated.quantity::bigint as quantity,
        aggregated.revenue_usd::double precision as revenue_usd,
        customer_ranks.customer_rank::bigint as customer_rank,
        customer_ranks.customer_rank <= {{ var('top_customers') | int }} as is_top_customer

    from aggregated
    inner join customer_ranks
        on customer_ranks.quarter = aggregated.quarter
        and customer_ranks.customer = aggregated.customer

),

final as (

    select * from joined

)

select * from final
