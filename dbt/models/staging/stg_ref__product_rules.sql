with

source as (

    select * from {{ source('ref', 'product_rules') }}

),

renamed as (

    select
        stage as rule_stage,
        "order" as rule_order,
        when_type,
        pattern,
        and_pattern,
        type as product_type,
        sub_cat

    from source

),

final as (

    select * from renamed

)

select * from final
