{#- A nested record column from an ordered list of (name, expression) pairs. -#}
{% macro make_struct(fields) -%}
    struct_pack({%- for name, expression in fields %}{{ name }} := {{ expression }}{{ ", " if not loop.last }}{% endfor -%})
{%- endmacro %}

{#- Text of a JSON document's field at a path ('$.a.b'). -#}
{% macro json_text(column, path) -%}
    json_extract_string({{ column }}, '{{ path }}')
{%- endmacro %}

{#- An ordered list aggregate. -#}
{% macro list_agg(expression, order_by) -%}
    list({{ expression }} order by {{ order_by }})
{%- endmacro %}
