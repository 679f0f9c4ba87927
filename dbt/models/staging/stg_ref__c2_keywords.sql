with

source as (

    select * from {{ source('ref', 'c2_keywords') }}

),

renamed as (

    select
        field as keyword_field,
        "order" as keyword_order,
        keyword,
        value as keyword_value

    from source

),

final as (

    select * from renamed

)

select * from final
