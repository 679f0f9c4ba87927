{#- Only one snapshot feeds the marts: the transform passes it as --vars '{"snapshot_id": "<sha256>"}'.
    SYNO_DBT_SNAPSHOT_ID is accepted as a fallback: unlike a changed --vars, a changed env var keeps
    dbt's partial parsing (only this file is re-parsed), which a long-lived dbtRunner benefits from. -#}
{%- set snapshot_id = var('snapshot_id', env_var('SYNO_DBT_SNAPSHOT_ID', '')) -%}
{%- if execute and (snapshot_id is none or snapshot_id | string | trim == '') -%}
    {{ exceptions.raise_compiler_error(
        'stg_raw__sales_lines needs the snapshot to build: pass the dbt var snapshot_id '
        ~ '(dbt build --vars {"snapshot_id": "<sha256>"}) or set SYNO_DBT_SNAPSHOT_ID'
    ) }}
{%- endif -%}

with

source as (

    select * from {{ source('raw', 'sales_lines') }}
    where snapshot_id = '{{ snapshot_id | string | replace("'", "''") }}'

),

renamed as (

    select
        -- ids
        snapshot_id,
        source_sheet,
        source_row,
        sheet_kind,
        sheet_year,
        invoice_number,

        -- dates
        invoice_date::date as invoice_date,
        ship_date::date as ship_date,

        -- who and where
        customer,
        country,
        region,
        delivery_from,
        ship_to,

        -- what
        product_raw,
        product,
        product_tag,
        item_code,
        product_type,
        sub_cat,
        tier,
        is_c2,
        c2_service_family,
        c2_capacity,
        c2_plan,

        -- amounts
        quantity::bigint as quantity,
        currency,
        price::double precision as price,
        total_local::double precision as total_local,
        revenue_usd::double precision as revenue_usd,
        tt_discount::double precision as tt_discount,
        discount::double precision as discount,

        -- quality flags and leftovers
        is_country_unmapped,
        is_currency_unmapped,
        is_product_unmapped,
        comments,
        extras

    from source

),

final as (

    select * from renamed

)

select * from final
