{%- set renamed %}{{ web_events_renamed() }}{% endset -%}

with deduplicated as (
    {{ first_rows(renamed, 'event_id', 'received_date, source_file, source_line') }}
),

final as (
    select * from deduplicated
)

select * from final
