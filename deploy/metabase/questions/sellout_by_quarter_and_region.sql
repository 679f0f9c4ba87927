-- Global sell-out by quarter and region (USD revenue, net quantity).
select quarter, region, sum(revenue_usd) as revenue_usd, sum(quantity) as quantity
from marts.sellout_quarterly
group by quarter, region
order by quarter, region
