with source as (
    select * from {{ source('lake', 'shop_orders') }}
),

renamed as (
    select
        order_id,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        lower(status) as status,
        cast(total as {{ dbt.type_numeric() }}) as total,
        currency,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        extracted_at,
        _source_file as source_file,
        _line as source_line
    from source
),

latest_version as (
    {{ deduplicate('renamed', 'order_id', 'updated_at desc, extracted_at desc') }}
),

final as (
    select * from latest_version
)

select * from final
