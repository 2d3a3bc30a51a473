-- One row per observed link: why two identifiers belong together (or why they were kept apart).
-- (Persons are joined by name, not through a CTE: a CTE read more than once is materialized
-- whole, while each join's identifier type filter reaches the table scan.)
with links as (
    select * from {{ ref('int_identity__links_collected') }}
),

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
)

select * from final
