-- A stable person_id per identifier: the hash of the person's anchor identifier, which stays
-- the same while the person's identifiers do.
with resolved as (
    select * from {{ ref('int_identity__components_resolved') }}
),

final as (
    select
        identifier_type || ':' || identifier_value as identifier_id,
        'p_' || left({{ dbt.hash("anchor_type || ':' || anchor_value") }}, 20) as person_id,
        identifier_type,
        identifier_value,
        anchor_type,
        anchor_value
    from resolved
)

select * from final
