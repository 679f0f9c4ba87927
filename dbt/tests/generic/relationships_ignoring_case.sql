{#- Like dbt's relationships test, but values match the way the loader matched them: trimmed,
    inner whitespace collapsed, lower-cased ("  GERMANY " finds "Germany"). Nulls are not checked.
    Fails with one row per child value that has no parent. -#}
{% test relationships_ignoring_case(model, column_name, to, field) %}

with

child as (

    select distinct {{ column_name }} as value
    from {{ model }}
    where {{ column_name }} is not null

),

parent as (

    select distinct lower(btrim(regexp_replace({{ field }}, '\s+', ' ', 'g'))) as match_key
    from {{ to }}
    where {{ field }} is not null

),

final as (

    select child.value
    from child
    left join parent
        on parent.match_key = lower(btrim(regexp_replace(child.value, '\s+', ' ', 'g')))
    where parent.match_key is null

)

select * from final

{% endtest %}
