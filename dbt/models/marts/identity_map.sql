{{
    config(
        materialized='incremental',
        unique_key='identifier_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook="delete from {{ this }} where person_id is null"
    )
}}

-- depends_on: {{ ref('int_identity__components_resolved') }}
-- One row per identifier: the person it belongs to.
-- Incremental: a run rewrites the identifiers int_identity__components_resolved resolved again
-- in it (resolved_at, after the run started) and deletes those that are gone (an empty row
-- each, deleted by the post-hook); every other identifier keeps its person, as the graph did.
with persons as (
    select * from {{ ref('int_identity__persons_assigned') }}
    {%- if is_incremental() %}
    where identifier_id in (
        select identifier_id
        from {{ ref('int_identity__components_resolved') }}
        where resolved_at >= {{ built_at() }}
    )
    {%- endif %}
),

final as (
    select
        identifier_id,
        person_id,
        identifier_type,
        identifier_value
    from persons
    {%- if is_incremental() %}

    union all

    select held.identifier_id, null, null, null
    from {{ this }} as held
    where not exists (
        select 1 from {{ ref('int_identity__components_resolved') }} as resolved
        where resolved.identifier_id = held.identifier_id
    )
    {%- endif %}
)

select * from final
