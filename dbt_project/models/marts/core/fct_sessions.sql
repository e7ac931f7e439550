{{
    config(
        materialized='incremental',
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        sort='started_at',
        dist='session_id',
    )
}}

with

sessions as (

    select * from {{ ref('stg_app__sessions') }}

),

user_session_channels as (

    select * from {{ ref('stg_app__user_session_channels') }}

),

{# inner join: a session without its channel row is left out until the
   channel row arrives; that row's newer _loaded_at then brings it in.
   A session whose row or channel row is gone from the source is kept and
   flagged (is_deleted): its flagged raw row's new _loaded_at brings it in,
   and delete+insert replaces the stored version #}
sessions_joined_to_channels as (

    select
        sessions.session_id,
        user_session_channels.user_id,
        user_session_channels.channel,
        sessions.started_at,
        (
            sessions.is_deleted or user_session_channels.is_deleted
        ) as is_deleted,
        greatest(
            sessions._loaded_at, user_session_channels._loaded_at
        ) as _loaded_at

    from sessions
    inner join user_session_channels
        on sessions.session_id = user_session_channels.session_id

),

final as (

    select * from sessions_joined_to_channels

    {% if is_incremental() %}
        -- safe: greatest() passes either side; re-reads replace by session_id
        where {{ loaded_after_watermark() }}
    {% endif %}

)

select * from final
