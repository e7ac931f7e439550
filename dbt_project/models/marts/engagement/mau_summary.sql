{{
    config(
        materialized='incremental',
        unique_key='activity_month',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        sort='activity_month',
        dist='even',
        post_hook="delete from {{ this }} where session_count = 0",
    )
}}

with

sessions as (

    select * from {{ ref('fct_sessions') }}

),

sessions_with_month as (

    select
        cast(
            {{ dbt.date_trunc('month', 'started_at') }} as date
        ) as activity_month,
        session_id,
        user_id,
        is_deleted,
        _loaded_at

    from sessions

),

{% if is_incremental() %}

    {# a month is recomputed whole when any of its sessions passes the
       watermark (new, or re-read in the overlap), so the stored rows always
       equal a full rebuild #}
    months_to_rebuild as (

        select distinct activity_month

        from sessions_with_month
        -- safe: a month hit by the overlap is recomputed whole and replaced
        where {{ loaded_after_watermark(watermark_column='last_loaded_at') }}

    ),

    sessions_in_scope as (

        select * from sessions_with_month
        where
            activity_month in (
                select months_to_rebuild.activity_month
                from months_to_rebuild
            )

    ),

{% else %}

    sessions_in_scope as (

        select * from sessions_with_month

    ),

{% endif %}

{# deleted sessions count for nothing, but their months are recomputed (a
   flagged session's new _loaded_at passes the watermark); a month left with
   no session gets session_count 0 and the post_hook removes it, so the
   incremental result equals a full rebuild #}
monthly_activity as (

    select
        activity_month,
        count(
            distinct case when is_deleted then null else user_id end
        ) as active_users,
        count(
            case when is_deleted then null else session_id end
        ) as session_count,
        max(_loaded_at) as last_loaded_at

    from sessions_in_scope
    group by 1

),

final as (

    select
        activity_month,
        cast(active_users as {{ dbt.type_bigint() }}) as active_users,
        cast(session_count as {{ dbt.type_bigint() }}) as session_count,
        last_loaded_at

    from monthly_activity

)

select * from final
