{#- The lake's web events with staging's names and types, one row per landed message (before
    deduplication). stg_web__events deduplicates them; int_web__events_parsed reads them
    directly in incremental runs, so a received-date filter reaches the Parquet scan and only
    the partitions it names are read. -#}
{% macro web_events_renamed() -%}
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
    from {{ source('lake', 'web_events') }}
{%- endmacro %}
