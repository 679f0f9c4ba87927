with

source as (

    select * from {{ source('ref', 'device_to_bay') }}

),

renamed as (

    select
        product,
        bays::integer as bays

    from source

),

final as (

    select * from renamed

)

select * from final
