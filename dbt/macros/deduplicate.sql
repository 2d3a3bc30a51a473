{#- The first row per key of a CTE, in the given order (staging's deduplication). -#}
{% macro deduplicate(relation, partition_by, order_by) -%}
    select *
    from {{ relation }}
    qualify row_number() over (partition by {{ partition_by }} order by {{ order_by }}) = 1
{%- endmacro %}

{#- The first row per key of `rows` (the text of a select statement), in the given order: the
    deduplication of event sources, where duplicates are rare. On DuckDB only the rows of a
    duplicated key are windowed and the rest pass straight through, instead of partitioning every
    row, payload and all, by its key (which spilled to disk at tens of millions of events). Keys
    compare null-safely, so the result is the same as deduplicate's. -#}
{% macro first_rows(rows, key, order_by) -%}
    with duplicated as (
        select {{ key }}
        from ({{ rows }}) as landed
        group by {{ key }}
        having count(*) > 1
    )

    select *
    from ({{ rows }}) as landed
    where not exists (
        select 1 from duplicated where duplicated.{{ key }} is not distinct from landed.{{ key }}
    )

    union all

    select *
    from ({{ rows }}) as landed
    where exists (
        select 1 from duplicated where duplicated.{{ key }} is not distinct from landed.{{ key }}
    )
    qualify row_number() over (partition by {{ key }} order by {{ order_by }}) = 1
{%- endmacro %}
