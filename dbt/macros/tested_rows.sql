{#- Tests on an incremental model that read only the rows no passing run of the test has seen.

    A model opts in with a `built_at` column (macro built_at: when the run that wrote the row
    started) and gives its columns the generic tests `unique_in_new_rows`,
    `not_null_in_new_rows` and `accepted_values_in_new_rows` (tests/generic/new_rows.sql). Such
    a test reads the rows built after the last run in which it passed (table
    dbt_meta.test_watermarks, written by the on-run-end hook record_test_watermarks), or every
    row while it has never passed, so a row that failed a test is read again until the test
    passes.

    This holds for tests of single rows (not_null, accepted_values), and for `unique` on the
    model's unique_key: a run replaces every held row whose key it writes (delete+insert or
    merge), so a key can repeat only among the rows one run wrote. A full refresh writes every
    row anew, and its tests read them all. -#}

{#- The moment the current run started, as a timestamp column: the rows one run writes. -#}
{% macro built_at() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}

{% macro test_watermarks() -%}
    {{ adapter.quote(target.database) }}.dbt_meta.test_watermarks
{%- endmacro %}

{#- on-run-start: the table of watermarks, once. Made while the hook renders (as the lake's
    views are), so that `dbt compile` and `dbt docs generate`, which render hooks without running
    them, compile the tests too. -#}
{% macro create_test_watermarks() -%}
    {%- if execute %}
        {%- do run_query(
            'create schema if not exists ' ~ adapter.quote(target.database) ~ '.dbt_meta'
        ) %}
        {%- do run_query(
            'create table if not exists ' ~ test_watermarks()
            ~ ' (test_id varchar, passed_through timestamp)'
        ) %}
    {%- endif %}
    select 1
{%- endmacro %}

{#- on-run-end: each opted-in test that passed has now seen every row built up to this run. -#}
{% macro record_test_watermarks(results) -%}
    {%- set passed = [] %}
    {%- if execute %}
        {%- for result in results
            if result.node.resource_type == 'test'
            and result.node.test_metadata
            and result.node.test_metadata.name.endswith('_in_new_rows')
            and result.status == 'pass' %}
            {%- do passed.append(result.node.unique_id) %}
        {%- endfor %}
    {%- endif %}
    {%- if passed %}
        {%- set listing -%}
            {%- for test_id in passed %}'{{ test_id }}'{{ ', ' if not loop.last }}{% endfor -%}
        {%- endset %}
    delete from {{ test_watermarks() }} where test_id in ({{ listing }});
    insert into {{ test_watermarks() }} (test_id, passed_through)
    {%- for test_id in passed %}
    {{ 'values' if loop.first else ',' }} ('{{ test_id }}', {{ built_at() }})
    {%- endfor %}
    {%- else %}
    select 1
    {%- endif %}
{%- endmacro %}

{#- The rows of `relation` (the tested model) that the current test (`model`, the test's node
    here) has not read in a run where it passed. The watermark is read when the test runs and
    written into its SQL as a constant, so the scan skips the row groups it does not need. -#}
{% macro rows_not_yet_tested(relation) -%}
    {%- set watermark = none %}
    {%- if execute and adapter.get_relation(
        database=target.database, schema='dbt_meta', identifier='test_watermarks'
    ) %}
        {%- set watermark = run_query(
            "select max(passed_through) from " ~ test_watermarks()
            ~ " where test_id = '" ~ model.unique_id ~ "'"
        ).columns[0].values()[0] %}
    {%- endif %}
    {%- if watermark is none %}
        {%- do return(relation) %}
    {%- endif %}
    {%- do return(
        "(select * from " ~ relation ~ " where built_at > cast('" ~ watermark
        ~ "' as timestamp)) new_rows"
    ) %}
{%- endmacro %}
