-- The snapshot passed as var('snapshot_id') must have rows in raw.sales_lines: a wrong or
-- not-yet-loaded id would otherwise build empty marts silently. Returns one row when it is empty.
with

sales_lines as (

    select * from {{ ref('stg_raw__sales_lines') }}

),

counted as (

    select count(*) as n_rows from sales_lines

),

final as (

    select * from counted
    where n_rows = 0

)

select * from final
