{{ config(materialized='table') }}

with source as (
    select * from {{ source('lake', 'esp_events') }}
),

renamed as (
    select
        sg_event_id as event_id,
        sg_message_id as message_id,
        email,
        event as event_type,
        cast("timestamp" as {{ dbt.type_timestamp() }}) as occurred_at,
        url,
        bounce_reason,
        bounce_type,
        asm_group_id,
        category,
        cast(received_date as date) as received_date,
        _source_file as source_file,
        _line as source_line
    from source
),

deduplicated as (
    {{ deduplicate('renamed', 'event_id', 'received_date, source_file, source_line') }}
),

final as (
    select * from deduplicated
)

select * from final
