{#- `unique` and `not_null` in one pass: for a view, each test evaluates the whole view again,
    so the live marts check their key once instead of twice. Fails with every null or repeated
    value. -#}
{% test unique_and_not_null(model, column_name) %}
select {{ column_name }}, count(*) as occurrences
from {{ model }}
group by {{ column_name }}
having {{ column_name }} is null or count(*) > 1
{% endtest %}
