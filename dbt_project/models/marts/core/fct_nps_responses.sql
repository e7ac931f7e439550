{{
    config(
        materialized='incremental',
        unique_key='nps_response_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        sort='modified_at',
        dist='nps_response_id',
    )
}}

with

nps_responses as (

    select * from {{ ref('stg_app__nps_responses') }}

    {% if is_incremental() %}
        -- safe: each load commits with a newer _loaded_at before dbt runs
        where _loaded_at > (
            select
                coalesce(
                    max(existing_rows._loaded_at),
                    cast('1900-01-01' as {{ dbt.type_timestamp() }})
                )
            from {{ this }} as existing_rows
        )
    {% endif %}

),

final as (

    select
        nps_response_id,
        score,
        is_deleted,
        created_at,
        modified_at,
        _batch_id,
        _loaded_at

    from nps_responses

)

select * from final
