{#- Values that trackers send when they have no real identifier; they must never link people. -#}
{% macro is_junk_identifier(column) -%}
    ({{ column }} is null
     or trim({{ column }}) = ''
     or lower(trim({{ column }})) in ('null', 'undefined', 'anonymous', '0', 'none', 'nil', 'nan',
                                      'unknown', 'n/a', '[object object]', '00000000-0000-0000-0000-000000000000'))
{%- endmacro %}

{#- The moment the run evaluates profiles and segments at (var as_of, default now). -#}
{% macro as_of() -%}
    {%- if var('as_of') -%}
        cast('{{ var("as_of") }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}

{#- Fractional days from `earlier` to `later`; null when either is null. -#}
{% macro days_between(earlier, later) -%}
    {{ return(adapter.dispatch('days_between', 'inboxgraph')(earlier, later)) }}
{%- endmacro %}

{% macro default__days_between(earlier, later) -%}
    ({{ dbt.datediff(earlier, later, 'second') }} / 86400.0)
{%- endmacro %}

{% macro duckdb__days_between(earlier, later) -%}
    ((epoch({{ later }}) - epoch({{ earlier }})) / 86400.0)
{%- endmacro %}
