{#- dbt's `unique`, `not_null` and `accepted_values` over only the rows of an incremental model
    that no passing run of the test has read (macro rows_not_yet_tested). -#}
{% test unique_in_new_rows(model, column_name) %}
{{ adapter.dispatch('test_unique', 'dbt')(rows_not_yet_tested(model), column_name) }}
{% endtest %}

{% test not_null_in_new_rows(model, column_name) %}
{{ adapter.dispatch('test_not_null', 'dbt')(rows_not_yet_tested(model), column_name) }}
{% endtest %}

{% test accepted_values_in_new_rows(model, column_name, values, quote=True) %}
{{ adapter.dispatch('test_accepted_values', 'dbt')(
    rows_not_yet_tested(model), column_name, values, quote
) }}
{% endtest %}
