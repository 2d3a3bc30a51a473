{{
    config(
        materialized='incremental',
        unique_key='link_id',
        incremental_strategy='delete+insert',
        on_schema_change='sync_all_columns',
        post_hook="delete from {{ this }} where left_type is null"
    )
}}

-- depends_on: {{ ref('int_identity__components_resolved') }}
-- One row per observed link: why two identifiers belong together (or why they were kept apart).
-- (Persons are joined by name, not through a CTE: a CTE read more than once is materialized
-- whole, while each join's identifier type filter reaches the table scan.)
--
-- Incremental: a row changes only when its link does or when the person of one of its two
-- identifiers does, so a run rewrites the links int_identity__links_collected wrote in this run
-- (built_at) and the links of every identifier int_identity__components_resolved resolved again
-- in it (resolved_at, after the run started), and deletes the links that are gone (an empty row
-- each, deleted by the post-hook). Every other row is kept. A full refresh builds them all.
with
{% if is_incremental() %}
resolved_now as (
    select identifier_type, identifier_value
    from {{ ref('int_identity__components_resolved') }}
    where resolved_at >= {{ built_at() }}
),

links as (
    select *
    from {{ ref('int_identity__links_collected') }} as collected
    where collected.built_at >= {{ built_at() }}
        or exists (
            select 1 from resolved_now
            where resolved_now.identifier_type = collected.left_type
                and resolved_now.identifier_value = collected.left_value
        )
        or exists (
            select 1 from resolved_now
            where resolved_now.identifier_type = collected.right_type
                and resolved_now.identifier_value = collected.right_value
        )
),
{% else %}
links as (
    select * from {{ ref('int_identity__links_collected') }}
),
{% endif %}

final as (
    select
        links.link_id,
        left_person.person_id,
        links.left_type,
        links.left_value,
        links.right_type,
        links.right_value,
        links.rule,
        links.source,
        links.source_record_id,
        links.first_observed_at,
        links.observations,
        left_person.person_id = right_person.person_id as applied
    from links
    inner join {{ ref('int_identity__persons_assigned') }} as left_person
        on left_person.identifier_type = links.left_type
        and left_person.identifier_value = links.left_value
    inner join {{ ref('int_identity__persons_assigned') }} as right_person
        on right_person.identifier_type = links.right_type
        and right_person.identifier_value = links.right_value
    {%- if is_incremental() %}

    union all

    -- Links no longer collected (a CRM or shop record no longer extracted, an erasure).
    select held.link_id, null, null, null, null, null, null, null, null, null, null, null
    from {{ this }} as held
    where not exists (
        select 1 from {{ ref('int_identity__links_collected') }} as collected
        where collected.link_id = held.link_id
    )
    {%- endif %}
)

select * from final
