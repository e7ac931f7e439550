with

source as (

    select * from {{ source('app', 'nps') }}

),

renamed as (

    select
        cast(id as {{ dbt.type_int() }}) as nps_response_id,
        cast(score as {{ dbt.type_int() }}) as score,
        -- soft-deleted (deleted = 1) or gone from the source (hard delete)
        (coalesce(deleted, 0) = 1 or _deleted_at is not null) as is_deleted,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(modified_at as {{ dbt.type_timestamp() }}) as modified_at,
        _batch_id,
        cast(_extracted_at as {{ dbt.type_timestamp() }}) as _extracted_at,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_deleted_at as {{ dbt.type_timestamp() }}) as _deleted_at

    from source

)

select * from renamed
