-- Accounts: one row per account behind each opportunity of the current quarter (filter on the rank).
with
-- include: _published_snapshot.sql

final as (
    select
        storylines.opportunity_rank as rank,
        storylines.region,
        storylines.lever,
        activation.spreadsheet_safe(accounts.customer) as customer,  -- safe to export (docs/SECURITY.md)
        activation.spreadsheet_safe(accounts.country) as country,
        accounts.last_order_quarter,
        accounts.last_order_date,
        accounts.revenue_usd,
        accounts.year_ago_revenue_usd,
        accounts.usd_at_stake,
        activation.spreadsheet_safe(accounts.buys) as buys,
        accounts.svr_rm_forecast_usd
    from activation.storylines as storylines
    join published_snapshot using (snapshot_id)
    cross join lateral jsonb_to_recordset(storylines.accounts) as accounts (
        customer text, country text, last_order_quarter date, last_order_date date, revenue_usd float8,
        previous_revenue_usd float8, year_ago_revenue_usd float8, usd_at_stake float8, buys text,
        svr_rm_revenue_usd float8, svr_rm_forecast_usd float8
    )
    where storylines.is_current_quarter
        [[and storylines.opportunity_rank = {{rank}}]]
)

select * from final
order by rank, usd_at_stake desc
