{%- set threshold = var('activation_change_threshold') | float -%}

with

customer_quarters as (

    select * from {{ ref('int_customer_quarters_spined') }}

),

with_bases as (

    -- The spine is contiguous per customer x region, so lag 1 / lag 4 are the previous quarter and
    -- the same quarter a year earlier (null before the customer's first quarter: no base).
    select
        *,
        lag(revenue_usd, 1) over customer_region as previous_quarter_revenue_usd,
        lag(revenue_usd, 4) over customer_region as year_ago_revenue_usd

    from customer_quarters
    window customer_region as (partition by customer, region order by quarter)

),

changes as (

    select
        *,
        case
            when previous_quarter_revenue_usd > 0
                then (revenue_usd - previous_quarter_revenue_usd) / previous_quarter_revenue_usd
        end as qoq_change,
        case
            when year_ago_revenue_usd > 0
                then (revenue_usd - year_ago_revenue_usd) / year_ago_revenue_usd
        end as yoy_change,
        case
            when has_svr_rm then 'SVR-RM buyer'
            when has_svr_desktop then 'Desktop only'
            when has_c2 and not has_non_c2 then 'C2 only'
            else 'Other'
        end as segment

    from with_bases

),

signals as (

    select
        *,
        case
            when quarter = first_quarter and revenue_usd > 0
                then 'new'
            when revenue_usd <= 0 and year_ago_revenue_usd > 0
                then 'dormant'
            when coalesce(yoy_change, qoq_change) >= {{ threshold }}
                then 'growth'
            when coalesce(yoy_change, qoq_change) <= -{{ threshold }}
                then 'decline'
            when revenue_usd > 0 and not has_c2 and segment in ('SVR-RM buyer', 'Desktop only')
                then 'cross-sell C2'
            else 'steady'
        end as signal

    from changes

),

final as (

    select
        quarter,
        region,
        customer,
        segment,
        revenue_usd::double precision as revenue_usd,
        qoq_change::double precision as qoq_change,
        yoy_change::double precision as yoy_change,
        has_c2,
        signal,
        country,
        last_order_date,
        c2_revenue_usd::double precision as c2_revenue_usd

    from signals

)

select * from final
