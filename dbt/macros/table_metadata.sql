{#
  What a materialization in Dagster shows of each model, logged as one line while dbt builds it
  (inboxgraph.dbt_project.TABLE_METADATA_PREFIX, then JSON): its columns with their types, its
  parents' columns (from which dagster-dbt works column lineage out, when the run needs it), and
  for a table its row count. A project-wide post-hook: it runs in dbt's own connection, so the
  UI shows each model with its metadata as soon as it finishes. Outside a Dagster run it logs
  nothing. The project's hooks run before a model's own: a model whose own post-hook deletes
  rows calls it again after that, and the last line logged for a model is the one kept.
#}
{% macro log_table_metadata() %}
    {%- if execute and env_var('DAGSTER_DBT_CLI', '') == 'true' -%}
        {%- set parents = {} -%}
        {%- for ref_args in model.refs -%}
            {%- set relation = ref(ref_args['name']) -%}
            {%- do parents.update({relation.render(): {'columns': column_types_of(relation)}}) -%}
        {%- endfor -%}
        {%- for source_args in model.sources -%}
            {%- set relation = source(source_args[0], source_args[1]) -%}
            {%- do parents.update({relation.render(): {'columns': column_types_of(relation)}}) -%}
        {%- endfor -%}
        {%- set row_count = none -%}
        {%- if config.get('materialized') != 'view' -%}
            {#- A view is not counted: counting it runs its whole query. -#}
            {%- set row_count = run_query('select count(*) from ' ~ this).columns[0].values()[0] -%}
        {%- endif -%}
        {%- set metadata = {'columns': column_types_of(this), 'parents': parents, 'row_count': row_count} -%}
        {%- do log('inboxgraph table metadata: ' ~ tojson(metadata), info=true) -%}
    {%- endif -%}
{% endmacro %}

{% macro column_types_of(relation) %}
    {%- set types = {} -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- do types.update({column.name: {'data_type': column.data_type}}) -%}
    {%- endfor -%}
    {{ return(types) }}
{% endmacro %}
