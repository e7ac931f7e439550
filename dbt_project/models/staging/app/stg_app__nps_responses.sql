with

source as (

    select * from {{ source('app', 'nps') }}

),

renamed as (

    select
        cast(id as {{ dbt.type_int() }}) as nps_response_id,
        cast(score as {{ dbt.type_int() }}) as score,
        coalesce(deleted, 0) = 1 as is_deleted,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(modified_at as {{ dbt.type_timestamp() }}) as modified_at,
        _batch_id,
        cast(_extracted_at as {{ dbt.type_timestamp() }}) as _extracted_at,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at

    from source

)

select * from renamed
