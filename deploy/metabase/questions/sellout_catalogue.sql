-- The full catalogue: sell-out by quarter, region, country, product type and sub-category.
select quarter, region, country, product_type, sub_cat, quantity, revenue_usd, customers
from marts.sellout_quarterly
order by quarter desc, revenue_usd desc nulls last
