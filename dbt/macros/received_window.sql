{#- The incremental event models (int_web__events_parsed, stg_esp__events) and the models that
    follow their new events (int_identity__links_collected, int_person__web_activity_aggregated)
    read only a window of the lake's received dates: the days Dagster names for the run (macro
    received_dates: each day whose lake partition was written since the models' last build
    began, a new day or one landed again). -#}

{#- The newest `column` (a timestamp) of the model's rows (`this`), as a literal read before the
    model's query runs (macro held_max); the epoch while it holds none, so a table emptied (or
    never filled) takes in every row again instead of comparing with null and taking in none. -#}
{% macro newest_held(column) -%}
    cast('{{ held_max(column) or "1970-01-01" }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The newest `column` of the model's rows (`this`, those matching `where` if given), as text
    for a literal in the compiled SQL; none while it holds none (or while parsing). A constant
    bound lets DuckDB skip the row groups outside it by their min and max, where a scalar
    subquery reads every row. -#}
{% macro held_max(column, where=none) -%}
    {%- set value = none %}
    {%- if execute %}
        {%- set value = run_query(
            'select cast(max(' ~ column ~ ') as varchar) from ' ~ this
            ~ (' where ' ~ where if where else '')
        ).columns[0].values()[0] %}
    {%- endif %}
    {{- return(value) }}
{%- endmacro %}

{#- True when the model's table (`this`) has `column`: a table built before the column existed
    lacks it, and its incremental run starts over as if the table were empty. -#}
{% macro holds_column(column) -%}
    {{- return(holds_columns([column])) }}
{%- endmacro %}

{#- True when `column` (a date) is one of `days` (ISO dates, macro received_dates): false for
    none of them, true for every date when `days` is none (dbt run without Dagster naming them).
    A constant list reaches the Parquet scan, which reads only those hive partitions. -#}
{% macro received_in_window(column, days) -%}
    {%- if days is none -%}
        true
    {%- elif days | length == 0 -%}
        false
    {%- else -%}
        {{ column }} in (
            {%- for day in days %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor -%}
        )
    {%- endif %}
{%- endmacro %}

{#- The first received copy of each event in `landed` (a CTE of landed rows with event_id,
    received_date, source_file and source_line) on the window's `days`, as CTEs ending in
    `output`. An event the model already holds from a day outside the window, received before
    its copy in the window, keeps its row (the copy is left out), so an incremental run agrees
    with a full refresh's first-copy-wins deduplication. -#}
{% macro first_copies_in_window(landed, days, output) -%}
window_landed as (
    select * from {{ landed }}
    where {{ received_in_window('received_date', days) }}
),

window_first as (
    {{ deduplicate('window_landed', 'event_id', 'received_date, source_file, source_line') }}
),

{{ output }} as (
    select *
    from window_first
    where not exists (
        select 1
        from {{ this }} as held
        where held.event_id = window_first.event_id
            and held.received_date < window_first.received_date
            and not {{ received_in_window('held.received_date', days) }}
    )
)
{%- endmacro %}
