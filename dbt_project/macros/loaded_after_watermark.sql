{#
    loaded_after_watermark(column='_loaded_at', watermark_column='_loaded_at')

    The `is_incremental()` filter of a model watermarked on load time: a
    predicate true for the rows whose `column` is later than the largest
    `watermark_column` already in the model's table ({{ this }}) minus an
    overlap of var('watermark_overlap_hours') hours, 1 by default. On an
    empty table the watermark is 1900-01-01, so every row passes.

    The overlap takes in loads that commit late: a load whose `_loaded_at` is
    older than rows a dbt run has already seen (two loads overlapping, or a
    worker with a slow clock) would otherwise be skipped for good. Rows in
    the overlap are processed again, so use it only where that is harmless,
    as with delete+insert on the model's unique_key.

    On PostgreSQL, with the defaults, it renders:

        _loaded_at > (
            select coalesce(max(existing_rows._loaded_at),
                cast('1900-01-01' as timestamp)) + ((interval '1 hour') * (-1))
            from <this> as existing_rows
        )
#}
{% macro loaded_after_watermark(
    column='_loaded_at', watermark_column='_loaded_at'
) -%}
    {%- set overlap_hours = var('watermark_overlap_hours') -%}
    {%- if overlap_hours is not number
        or overlap_hours < 0
        or overlap_hours != overlap_hours | int -%}
        {{ exceptions.raise_compiler_error(
            "var 'watermark_overlap_hours' must be a whole number of hours, "
            ~ "0 or more; got " ~ (overlap_hours | tojson) ~ ". Set it in "
            ~ "dbt_project.yml or with --vars '{watermark_overlap_hours: 1}'"
        ) }}
    {%- endif -%}
    {%- set floor -%}
        cast('1900-01-01' as {{ dbt.type_timestamp() }})
    {%- endset -%}
    {%- set stored_max -%}
        coalesce(max(existing_rows.{{ watermark_column }}), {{ floor }})
    {%- endset -%}
    {%- set watermark = dbt.dateadd(
        'hour', -1 * (overlap_hours | int), stored_max
    ) -%}
    {{ column }} > (
        select {{ watermark | trim }}
        from {{ this }} as existing_rows
    )
{%- endmacro %}
