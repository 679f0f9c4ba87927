with

source as (

    select * from {{ source('ref', 'mapping_versions') }}

),

renamed as (

    select
        file_name,
        sha256 as file_sha256,
        rows as row_count,
        loaded_at

    from source

),

final as (

    select * from renamed

)

select * from final
