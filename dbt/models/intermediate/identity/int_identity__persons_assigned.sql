-- A view: int_identity__components_resolved computes identifier_id and person_id for the rows
-- each run replaces, so a table here would only copy every identifier again on every run.
{{ config(materialized='view') }}

-- A stable person_id per identifier: the hash of the person's anchor identifier, which stays
-- the same while the person's identifiers do. A blocked or shared identifier belongs to no one.
with resolved as (
    select * from {{ ref('int_identity__components_resolved') }}
),

final as (
    select
        identifier_id,
        person_id,
        identifier_type,
        identifier_value,
        anchor_type,
        anchor_value
    from resolved
    where person_id is not null
)

select * from final
