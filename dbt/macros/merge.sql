{#- The `merge_clauses` of an incremental model under dbt-duckdb's `merge` strategy whose run
    also writes a row for each key that must go (a person, link or identifier no longer there,
    an event no longer of its kind): such a row, `gone` (a condition on the new row,
    DBT_INTERNAL_SOURCE), deletes the held row of its key and is never inserted; every other new
    row replaces its key's row or is added. -#}
{% macro merge_removing(gone) -%}
    {{ return({
        'when_matched': [
            {'condition': gone, 'action': 'delete'},
            {'action': 'update', 'mode': 'by_name'},
        ],
        'when_not_matched': [
            {'condition': 'not (' ~ gone ~ ')', 'action': 'insert', 'mode': 'by_name'},
        ],
    }) }}
{%- endmacro %}
