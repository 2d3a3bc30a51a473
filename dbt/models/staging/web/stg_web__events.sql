with renamed as (
    {{ web_events_renamed() }}
),

deduplicated as (
    {{ deduplicate('renamed', 'event_id', 'received_date, source_file, source_line') }}
),

final as (
    select * from deduplicated
)

select * from final
