{{
    config(
        materialized='incremental',
        unique_key='link_id',
        incremental_strategy='merge',
        merge_clauses=merge_removing('DBT_INTERNAL_SOURCE.left_type is null'),
        on_schema_change='sync_all_columns'
    )
}}

-- depends_on: {{ ref('int_identity__components_resolved') }}
-- One row per observed link and override: why two identifiers belong together (or, refused_by,
-- the rule that kept them apart).
-- (Persons are joined by name, not through a CTE: a CTE read more than once is materialized
-- whole, while each join's identifier type filter reaches the table scan.)
--
-- Incremental: a row changes only when its link does or when the person of one of its two
-- identifiers does. Each row keeps written_at, when this model's build that wrote it began
-- (after the graph's build in the same run had finished). A run rewrites the links that
-- int_identity__links_collected wrote after the newest written_at (its built_at) and the links
-- of every identifier int_identity__components_resolved resolved again after it (resolved_at),
-- so the runs that built the graph without this mart are taken in too; it deletes the links
-- that are gone (an empty row each, macro merge_removing) and keeps every other row. A full
-- refresh builds them all, as does the first run on a table without written_at.
{%- set tracked = is_incremental() and holds_column('written_at') %}
with
{% if tracked %}
{#- A mart holding no row counts from the epoch: every link is written. -#}
{%- set since = newest_held('written_at') %}
resolved_since as (
    select identifier_type, identifier_value
    from {{ ref('int_identity__components_resolved') }}
    where resolved_at > {{ since }}
),

-- Each reason to rewrite a link on its own, unioned: with the three or-ed in one filter, DuckDB
-- planned mark joins that read every collected link's identifiers into a hash table.
rewritten as (
    select link_id
    from {{ ref('int_identity__links_collected') }}
    where built_at > {{ since }}
    {%- for side in ['left', 'right'] %}

    union

    select collected.link_id
    from {{ ref('int_identity__links_collected') }} as collected
    inner join resolved_since
        on resolved_since.identifier_type = collected.{{ side }}_type
        and resolved_since.identifier_value = collected.{{ side }}_value
    {%- endfor %}
),

links as (
    select *
    from {{ ref('int_identity__links_collected') }}
    where link_id in (select link_id from rewritten)
),
{% else %}
links as (
    select * from {{ ref('int_identity__links_collected') }}
),
{% endif %}

-- The links a rule refused, with the rule (kept on the refused link's left identifier).
refusals as (
    select left_type, left_value, right_type, right_value, any_value(reason) as reason
    from (
        select
            identifier_type as left_type,
            identifier_value as left_value,
            unnest(refused_links, recursive := true)
        from {{ ref('int_identity__components_resolved') }}
        where len(refused_links) > 0
    )
    group by all
),

final as (
    select
        links.link_id,
        coalesce(left_person.person_id, right_person.person_id) as person_id,
        links.left_type,
        links.left_value,
        links.right_type,
        links.right_value,
        links.rule,
        links.source,
        links.source_record_id,
        links.first_observed_at,
        links.observations,
        -- A never_link override is applied when it keeps its two identifiers apart.
        case
            when links.rule = 'never_link'
                then left_person.person_id is distinct from right_person.person_id
            else coalesce(left_person.person_id = right_person.person_id, false)
        end as applied,
        case
            when links.rule = 'never_link' then null
            when coalesce(left_person.person_id = right_person.person_id, false) then null
            else refusals.reason
        end as refused_by,
        cast(get_current_timestamp() as timestamp) as written_at
    from links
    -- A blocked or shared identifier belongs to no one: its links are kept, refused.
    left join {{ ref('int_identity__persons_assigned') }} as left_person
        on left_person.identifier_type = links.left_type
        and left_person.identifier_value = links.left_value
    left join {{ ref('int_identity__persons_assigned') }} as right_person
        on right_person.identifier_type = links.right_type
        and right_person.identifier_value = links.right_value
    left join refusals
        on refusals.left_type = links.left_type
        and refusals.left_value = links.left_value
        and refusals.right_type = links.right_type
        and refusals.right_value = links.right_value
    {%- if is_incremental() %}

    union all

    -- Links no longer collected (a CRM or shop record no longer extracted, an erasure).
    select
        held.link_id, null, null, null, null, null, null, null, null, null, null, null, null, null
    from {{ this }} as held
    where not exists (
        select 1 from {{ ref('int_identity__links_collected') }} as collected
        where collected.link_id = held.link_id
    )
    {%- endif %}
)

select * from final
