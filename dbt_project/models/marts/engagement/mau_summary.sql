{{
    config(
        materialized='incremental',
        unique_key='activity_month',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        sort='activity_month',
        dist='even',
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

monthly_activity as (

    select
        activity_month,
        count(distinct user_id) as active_users,
        count(session_id) as session_count,
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
