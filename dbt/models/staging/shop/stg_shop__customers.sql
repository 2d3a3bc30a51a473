with source as (
    select * from {{ source('lake', 'shop_customers') }}
),

renamed as (
    select
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        email,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        extracted_at,
        _source_file as source_file,
        _line as source_line
    from source
),

latest_version as (
    {{ deduplicate('renamed', 'customer_id', 'updated_at desc, extracted_at desc') }}
),

final as (
    select * from latest_version
)

select * from final
