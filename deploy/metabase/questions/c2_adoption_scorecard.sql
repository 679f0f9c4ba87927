-- C2 adoption scorecard: by month, service family, plan, region and customer tier (Top 5 / Top 20 / Long tail).
select
    month,
    quarter,
    c2_service_family,
    c2_plan,
    region,
    customer_tier,
    active_customers,
    new_orders,
    revenue_usd,
    quantity,
    avg_seats
from marts.c2_adoption_scorecard
order by month desc, revenue_usd desc nulls last
