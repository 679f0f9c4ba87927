with

sales_lines as (

    select * from {{ ref('int_sales_lines_enriched') }}

),

aggregated as (

    select
        quarter,
        region,
        country,
        product_type,
        sub_cat,
        sum(quantity)::bigint as quantity,
        sum(revenue_usd)::double precision as revenue_usd,
        count(distinct customer) filter (where is_customer_known)::bigint as customers

    from sales_lines
    group by quarter, region, country, product_type, sub_cat

),

final as (

    select * from aggregated

)

select * from final
