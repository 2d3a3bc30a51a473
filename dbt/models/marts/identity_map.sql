-- One row per identifier: the person it belongs to.
with persons as (
    select * from {{ ref('int_identity__persons_assigned') }}
),

final as (
    select
        identifier_id,
        person_id,
        identifier_type,
        identifier_value
    from persons
)

select * from final
