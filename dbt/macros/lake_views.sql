{#- The lake's raw tables as views in the warehouse's schema `lake`, made before every run
    (on-run-start): each reads its Parquet files in place (hive partitions, columns united by
    name), so a source is a relation like any other. dbt, DuckDB and Dagster see its columns:
    column lineage reaches back to the lake, and filters on received_date still reach the scan
    (DuckDB inlines views). A table with no files yet gets no view, and a model reading it fails
    with "does not exist", unless the source is `optional` (a vendor the shop may not use): it
    is an empty view of its declared columns. On another warehouse, load the lake into schema
    `lake` instead. -#}
{% macro create_lake_views() -%}
    {%- if execute %}
        {%- do run_query('create schema if not exists lake') %}
        {%- for source in graph.sources.values() if source.source_name == 'lake' %}
            {%- set files = lake_files(source.name) %}
            {%- set found = run_query(
                "select count(*) from glob('" ~ files ~ "')"
            ).columns[0].values()[0] %}
            {%- if found > 0 %}
                {%- do run_query(
                    'create or replace view lake.' ~ source.name ~ ' as select * from '
                    ~ lake_scan(source.name)
                ) %}
            {%- elif source.meta.get('optional') %}
                {%- do run_query(
                    'create or replace view lake.' ~ source.name ~ ' as '
                    ~ empty_relation(source.columns.values())
                ) %}
            {%- else %}
                {%- do run_query('drop view if exists lake.' ~ source.name) %}
            {%- endif %}
        {%- endfor %}
    {%- endif %}
    select 1
{%- endmacro %}

{#- The Parquet files of one lake table, as a glob. -#}
{% macro lake_files(name) -%}
    {{ env_var('INBOXGRAPH_LAKE_URL') }}/raw/{{ name }}/**/*.parquet
{%- endmacro %}

{#- A table function reading one lake table. -#}
{% macro lake_scan(name) -%}
    read_parquet('{{ lake_files(name) }}', hive_partitioning = true, union_by_name = true)
{%- endmacro %}

{#- No rows, with the declared `columns` (each with a data_type). -#}
{% macro empty_relation(columns) -%}
    select
    {%- for column in columns %}
        cast(null as {{ column.data_type }}) as {{ adapter.quote(column.name) }}{{ ',' if not loop.last }}
    {%- endfor %}
    limit 0
{%- endmacro %}
