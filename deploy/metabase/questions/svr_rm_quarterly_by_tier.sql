-- SVR-RM sell-out by quarter and tier (the history the forecast continues).
select quarter, tier, quantity, revenue_usd
from marts.svr_rm_quarterly
order by quarter, tier
