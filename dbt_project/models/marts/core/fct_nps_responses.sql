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
        -- safe: a row re-read in the overlap replaces itself (delete+insert)
        where {{ loaded_after_watermark() }}
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
