with

sales_lines as (

    select * from {{ ref('stg_raw__sales_lines') }}

),

countries as (

    select * from {{ ref('stg_ref__countries') }}

),

dated as (

    -- A line without an invoice date cannot be placed in a period: it is left out of every mart
    -- (the transform's quality gates count such rows).
    select * from sales_lines
    where invoice_date is not null

),

country_names as (

    -- The loader matched countries on a key (trimmed, whitespace collapsed, lower-cased): report
    -- each country under the mapping file's spelling, whatever the workbook's casing. The loader
    -- already trims and collapses the cell, so lower() is all the line side needs.
    select
        lower(btrim(regexp_replace(country, '\s+', ' ', 'g'))) as country_key,
        min(country) as country_name

    from countries
    group by 1

),

enriched as (

    select
        snapshot_id,
        source_sheet,
        source_row,
        sheet_kind,
        invoice_number,
        invoice_date,
        date_trunc('month', invoice_date)::date as month,
        date_trunc('quarter', invoice_date)::date as quarter,

        coalesce(customer, '(unknown)') as customer,
        customer is not null as is_customer_known,
        coalesce(country_names.country_name, dated.country, '(unknown)') as country,
        region,

        product,
        product_type,
        sub_cat,
        -- The cleaning classified every line (one home for the rules): read its decisions, never re-derive
        -- them. A tier is set exactly on the SVR-RM sub-categories, C2 fields exactly on the C2 lines.
        tier,
        tier is not null as is_svr_rm,
        sub_cat like 'SVR-DT-%' as is_svr_desktop,
        is_c2,
        c2_service_family,
        c2_capacity,
        c2_plan,

        quantity,
        currency,
        revenue_usd,

        is_country_unmapped,
        is_currency_unmapped,
        is_product_unmapped

    from dated
    left join country_names
        on country_names.country_key = lower(dated.country)

),

final as (

    select * from enriched

)

select * from final
