-- Top SVR-RM customers of the latest quarter (rank on trailing four quarters), all tiers together.
with latest as (
    select max(quarter) as quarter from marts.svr_rm_customer_quarterly
),

final as (
    select
        customers.customer_rank,
        activation.spreadsheet_safe(customers.customer) as customer,  -- safe to export (docs/SECURITY.md)
        sum(customers.quantity) as quantity,
        sum(customers.revenue_usd) as revenue_usd,
        string_agg(customers.tier, ', ' order by customers.tier) as tiers
    from marts.svr_rm_customer_quarterly as customers
    join latest using (quarter)
    where customers.is_top_customer
    group by customers.customer_rank, customers.customer
)

select * from final
order by customer_rank
