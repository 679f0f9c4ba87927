-- Customer signals (new, growth, decline, dormant, cross-sell C2, steady) by quarter and region.
select quarter, region, signal, count(*) as customers, sum(revenue_usd) as revenue_usd
from marts.commercial_activation_snapshot
group by quarter, region, signal
order by quarter, region, signal
