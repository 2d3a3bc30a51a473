with source as (
    select * from {{ source('lake', 'shop_products') }}
),

final as (
    select
        product_id,
        name as product_name,
        category,
        cast(price as {{ dbt.type_numeric() }}) as price
    from source
)

select * from final
