with

source as (

    select * from {{ source('ref', 'countries') }}

),

renamed as (

    select
        country,
        region

    from source

),

final as (

    select * from renamed

)

select * from final
