with

source as (

    select * from {{ source('app', 'session_timestamp') }}

),

renamed as (

    select
        sessionid as session_id,
        cast(ts as {{ dbt.type_timestamp() }}) as started_at,
        _deleted_at is not null as is_deleted,
        _batch_id,
        cast(_extracted_at as {{ dbt.type_timestamp() }}) as _extracted_at,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_deleted_at as {{ dbt.type_timestamp() }}) as _deleted_at

    from source

)

select * from renamed
