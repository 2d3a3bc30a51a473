{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns'
    )
}}

-- ESP events deduplicated by event id, the first received copy winning. An incremental run
-- reads only the received dates of its window, as int_web__events_parsed does (macro
-- first_copies_in_window); a full refresh reads them all (macro first_rows).

{% set renamed %}
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
from {{ source('lake', 'esp_events') }}
{% endset %}

with
{% if is_incremental() %}
renamed as (
    {{ renamed }}
),

{{ first_copies_in_window('renamed', received_dates('esp_events'), 'final') }}
{% else %}
final as (
    {{ first_rows(renamed, 'event_id', 'received_date, source_file, source_line') }}
)
{% endif %}

-- When this run started: its tests read the rows written since they last passed (tested_rows.sql).
select *, {{ built_at() }} as built_at from final
