with source as (
    select * from {{ source('lake', 'web_events_stream') }}
),

renamed as (
    select
        message_id as event_id,
        type as message_type,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(user_id), '') as user_id,
        nullif(trim(event), '') as event_name,
        nullif(trim(previous_id), '') as previous_id,
        email,
        cast("timestamp" as {{ dbt.type_timestamp() }}) as occurred_at,
        cast(received_at as {{ dbt.type_timestamp() }}) as received_at,
        cast(received_date as date) as received_date,
        {{ json_text('properties', '$.product_id') }} as product_id,
        {{ json_text('properties', '$.order_id') }} as order_id,
        _source_file as source_file,
        _line as source_line
    from source
),

deduplicated as (
    {{ deduplicate('renamed', 'event_id', 'received_at, source_file, source_line') }}
),

final as (
    select * from deduplicated
)

select * from final
