{#- The incremental event models (int_web__events_parsed, stg_esp__events) read only a window of
    the lake's received dates: those after the newest one they hold, plus `relanded` (the days
    landed since their last build began, macro relanded_dates: a late or rewritten file for a
    day they hold is read again through it). -#}

{#- Where an incremental run's window starts: the day after the newest `column` (a received
    date) the model holds (`this`, its rows matching `where` if given); the epoch before the
    model holds any, or while parsing. -#}
{% macro window_start(column='received_date', where=none) -%}
    {%- set start = '1970-01-01' %}
    {%- if execute %}
        {%- set start = run_query(
            'select max(' ~ column ~ ') + 1 from ' ~ this ~ (' where ' ~ where if where else '')
        ).columns[0].values()[0] or start %}
    {%- endif %}
    {{- return(start) }}
{%- endmacro %}

{#- The newest `column` (a timestamp) of the model's rows (`this`), as a literal read before the
    model's query runs (macro held_max); the epoch while it holds none, so a table emptied (or
    never filled) takes in every row again instead of comparing with null and taking in none. -#}
{% macro newest_held(column) -%}
    cast('{{ held_max(column) or "1970-01-01" }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- The newest `column` of the model's rows (`this`), as text for a literal in the compiled SQL;
    none while it holds none (or while parsing). A constant bound lets DuckDB skip the row
    groups outside it by their min and max, where a scalar subquery reads every row. -#}
{% macro held_max(column) -%}
    {%- set value = none %}
    {%- if execute %}
        {%- set value = run_query(
            'select cast(max(' ~ column ~ ') as varchar) from ' ~ this
        ).columns[0].values()[0] %}
    {%- endif %}
    {{- return(value) }}
{%- endmacro %}

{#- True when the model's table (`this`) has `column`: a table built before the column existed
    lacks it, and its incremental run starts over as if the table were empty. -#}
{% macro holds_column(column) -%}
    {%- set held = false %}
    {%- if execute %}
        {%- set held = column in (
            adapter.get_columns_in_relation(this) | map(attribute='name') | list
        ) %}
    {%- endif %}
    {{- return(held) }}
{%- endmacro %}

{#- True when `column` (a date) is in an incremental run's window: on or after `start`, or one
    of the `extra_days` (ISO dates). Only the extra days before `start` are named: DuckDB plans
    a join on the window's rows far worse with an `or` in their filter (a semi join probing every
    parsed event instead of the window's few), so the usual case, a new day, has none. -#}
{% macro received_in_window(column, start, extra_days) -%}
    ({{ column }} >= cast('{{ start }}' as date)
    {%- for day in extra_days | reject('ge', start | string) %}
        or {{ column }} = cast('{{ day }}' as date)
    {%- endfor %})
{%- endmacro %}

{#- The first received copy of each event in `landed` (a CTE of landed rows with event_id,
    received_date, source_file and source_line) within the window, as CTEs ending in `output`.
    An event the model already holds from a day outside the window, received before its copy in
    the window, keeps its row (the copy is left out), so an incremental run agrees with a full
    refresh's first-copy-wins deduplication. -#}
{% macro first_copies_in_window(landed, relanded, output) -%}
    {%- set start = window_start() %}
window_landed as (
    select * from {{ landed }}
    where {{ received_in_window('received_date', start, relanded) }}
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
            and not {{ received_in_window('held.received_date', start, relanded) }}
    )
)
{%- endmacro %}
