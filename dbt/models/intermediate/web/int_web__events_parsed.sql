{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns'
    )
}}

-- depends_on: {{ source('lake', 'web_events') }}
-- depends_on: {{ ref('stg_ga4__events') }}
-- depends_on: {{ ref('stg_mixpanel__events') }}
-- The JSON payloads of web events (Segment, GA4 and Mixpanel, macro web_events_renamed)
-- unpacked once. An incremental run reads only the lake
-- partitions of its window: the received days landed since the last build began, new or landed
-- again, as Dagster names them (macro received_dates). It keeps staging's rule that the first
-- received copy of a message wins: a message already parsed from a day outside the window,
-- received before its copy in the window, keeps its row.
with
{% if is_incremental() %}
landed as (
    {{ web_events_renamed() }}
),

{{ first_copies_in_window('landed', received_dates('web_events'), 'events') }},
{% else %}
events as (
    select * from {{ ref('stg_web__events') }}
),
{% endif %}

final as (
    select
        event_id,
        message_type,
        case when {{ is_junk_identifier('anonymous_id') }} then null else anonymous_id end
            as anonymous_id,
        case when {{ is_junk_identifier('user_id') }} then null else user_id end as user_id,
        case when {{ is_junk_identifier('previous_id') }} then null else previous_id end
            as previous_id,
        event_name,
        occurred_at,
        received_date,
        email as traits_email,
        {{ json_text('traits', '$.firstName') }} as traits_first_name,
        {{ json_text('traits', '$.lastName') }} as traits_last_name,
        {{ json_text('traits', '$.address.city') }} as traits_city,
        {{ json_text('traits', '$.address.country') }} as traits_country,
        lower({{ json_text('traits', '$.email_opt_in') }}) = 'true' as traits_email_opt_in,
        lower({{ json_text('traits', '$.unsubscribed') }}) = 'true' as traits_unsubscribed,
        {{ json_text('properties', '$.product_id') }} as product_id,
        {{ json_text('properties', '$.category') }} as product_category,
        {{ json_text('properties', '$.order_id') }} as order_id,
        try_cast({{ json_text('properties', '$.revenue') }} as {{ dbt.type_numeric() }})
            as revenue,
        {{ json_text('properties', '$.path') }} as page_path,
        source
    from events
)

-- When this run started: its tests read the rows written since they last passed (tested_rows.sql).
select *, {{ built_at() }} as built_at from final
