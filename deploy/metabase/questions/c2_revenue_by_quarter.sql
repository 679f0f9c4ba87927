-- C2 revenue and new orders by quarter and service family.
select
    quarter,
    c2_service_family,
    sum(revenue_usd) as revenue_usd,
    sum(new_orders) as new_orders,
    sum(quantity) as quantity
from marts.c2_adoption_scorecard
group by quarter, c2_service_family
order by quarter, c2_service_family
