{#- A nested record column from an ordered list of (name, expression) pairs. -#}
{% macro make_struct(fields) -%}
    {{ return(adapter.dispatch('make_struct', 'inboxgraph')(fields)) }}
{%- endmacro %}

{% macro duckdb__make_struct(fields) -%}
    struct_pack({%- for name, expression in fields %}{{ name }} := {{ expression }}{{ ", " if not loop.last }}{% endfor -%})
{%- endmacro %}

{% macro bigquery__make_struct(fields) -%}
    struct({%- for name, expression in fields %}{{ expression }} as {{ name }}{{ ", " if not loop.last }}{% endfor -%})
{%- endmacro %}

{% macro snowflake__make_struct(fields) -%}
    object_construct({%- for name, expression in fields %}'{{ name }}', {{ expression }}{{ ", " if not loop.last }}{% endfor -%})
{%- endmacro %}

{#- Text of a JSON document's field at a path ('$.a.b'). -#}
{% macro json_text(column, path) -%}
    {{ return(adapter.dispatch('json_text', 'inboxgraph')(column, path)) }}
{%- endmacro %}

{% macro duckdb__json_text(column, path) -%}
    json_extract_string({{ column }}, '{{ path }}')
{%- endmacro %}

{% macro snowflake__json_text(column, path) -%}
    json_extract_path_text({{ column }}, '{{ path | replace("$.", "") }}')
{%- endmacro %}

{% macro bigquery__json_text(column, path) -%}
    json_value({{ column }}, '{{ path }}')
{%- endmacro %}

{#- An ordered list aggregate (DuckDB list, BigQuery array, Snowflake array). -#}
{% macro list_agg(expression, order_by) -%}
    {{ return(adapter.dispatch('list_agg', 'inboxgraph')(expression, order_by)) }}
{%- endmacro %}

{% macro duckdb__list_agg(expression, order_by) -%}
    list({{ expression }} order by {{ order_by }})
{%- endmacro %}

{% macro bigquery__list_agg(expression, order_by) -%}
    array_agg({{ expression }} ignore nulls order by {{ order_by }})
{%- endmacro %}

{% macro snowflake__list_agg(expression, order_by) -%}
    array_agg({{ expression }}) within group (order by {{ order_by }})
{%- endmacro %}
