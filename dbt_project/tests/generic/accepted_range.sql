{#
    accepted_range: fails for every row whose value lies outside
    [min_value, max_value], both bounds included. Nulls pass; pair it with
    not_null. A stand-in for dbt_utils.accepted_range, which cannot be
    installed here (no dbt hub packages).
#}
{% test accepted_range(model, column_name, min_value, max_value) %}

    select *

    from {{ model }}

    where
        {{ column_name }} is not null
        and (
            {{ column_name }} < {{ min_value }}
            or {{ column_name }} > {{ max_value }}
        )

{% endtest %}
