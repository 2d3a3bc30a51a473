with source as (
    select * from {{ source('lake', 'shop_order_items') }}
),

renamed as (
    select
        order_id,
        product_id,
        quantity,
        cast(unit_price as {{ dbt.type_numeric() }}) as unit_price,
        extracted_at,
        _source_file as source_file,
        _line as source_line
    from source
),

latest_batch as (
    -- An order's lines come whole with every extraction of the order: keep the newest set.
    select *
    from renamed
    qualify dense_rank() over (partition by order_id order by extracted_at desc) = 1
),

final as (
    select
        order_id || '-' || cast(
            row_number() over (partition by order_id order by product_id, source_line)
            as {{ dbt.type_string() }}
        ) as order_item_id,
        order_id,
        product_id,
        quantity,
        unit_price,
        extracted_at
    from latest_batch
)

select * from final
