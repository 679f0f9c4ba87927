{#- Fails with one row per duplicated combination of `combination_of_columns`
    (the dbt_utils test of the same name, without the package). Nulls compare equal. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grouped as (

    select
        {{ combination_of_columns | join(',\n        ') }},
        count(*) as n_rows

    from {{ model }}
    group by {{ combination_of_columns | join(', ') }}

),

final as (

    select * from grouped
    where n_rows > 1

)

select * from final

{% endtest %}
