with

source as (

    select * from {{ source('ref', 'exchange_rates') }}

),

renamed as (

    select
        currency,
        rate_to_usd::double precision as rate_to_usd

    from source

),

final as (

    select * from renamed

)

select * from final
