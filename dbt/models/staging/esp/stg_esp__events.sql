{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns'
    )
}}

-- ESP events deduplicated by event id, the first received copy winning. An incremental run
-- reads only the lake partitions of its window, as int_web__events_parsed does: the newest
-- received day and the one before, plus any older day landed again since the last build
-- (macro relanded_dates, set by Dagster). An event already staged from a day outside the
-- window, received before its copy in the window, keeps its row.
{%- set relanded = relanded_dates('esp_events') %}
{%- if is_incremental() and execute %}
    {%- set window_start = run_query(
        'select max(received_date) - 1 from ' ~ this
    ).columns[0].values()[0] or '1970-01-01' %}
{%- endif %}

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

{% if is_incremental() %}
window_landed as (
    select * from renamed
    where {{ received_in_window('received_date', window_start, relanded) }}
),

window_first as (
    {{ deduplicate('window_landed', 'event_id', 'received_date, source_file, source_line') }}
),

final as (
    select *
    from window_first
    where not exists (
        select 1
        from {{ this }} as staged
        where staged.event_id = window_first.event_id
            and staged.received_date < window_first.received_date
            and not {{ received_in_window('staged.received_date', window_start, relanded) }}
    )
)
{% else %}
final as (
    {{ deduplicate('renamed', 'event_id', 'received_date, source_file, source_line') }}
)
{% endif %}

select * from final
