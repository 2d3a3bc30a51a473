{{
    config(
        materialized='incremental',
        unique_key='identifier_id',
        incremental_strategy='merge',
        merge_clauses=merge_removing('DBT_INTERNAL_SOURCE.person_id is null'),
        on_schema_change='sync_all_columns'
    )
}}

-- One row per identifier: the person it belongs to.
-- Incremental: a run writes only the identifiers that are new or whose person changed, and
-- deletes those that are gone (an empty row each, macro merge_removing), comparing the
-- graph with the held rows, so it holds whatever the graph's runs changed since its own last
-- build. (The persons are read by name: a CTE read twice is materialized whole.)
with final as (
    select
        persons.identifier_id,
        persons.person_id,
        persons.identifier_type,
        persons.identifier_value
    from {{ ref('int_identity__persons_assigned') }} as persons
    {%- if is_incremental() %}
    where not exists (
        select 1
        from {{ this }} as held
        where held.identifier_id = persons.identifier_id
            and held.person_id = persons.person_id
    )

    union all

    select held.identifier_id, null, null, null
    from {{ this }} as held
    where not exists (
        select 1
        from {{ ref('int_identity__persons_assigned') }} as persons
        where persons.identifier_id = held.identifier_id
    )
    {%- endif %}
)

select * from final
