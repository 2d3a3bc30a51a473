with source as (
    select * from {{ source('lake', 'web_events') }}
),

renamed as (
    select
        message_id as event_id,
        type as message_type,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(user_id), '') as user_id,
        nullif(trim(event), '') as event_name,
        name as page_name,
        nullif(trim(previous_id), '') as previous_id,
        group_id,
        email,
        cast("timestamp" as {{ dbt.type_timestamp() }}) as occurred_at,
        cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at,
        cast(received_date as date) as received_date,
        traits,
        properties,
        context,
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
