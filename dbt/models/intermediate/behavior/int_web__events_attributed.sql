-- A view: its readers each take the columns and event types they need, and writing every web
-- event out a second time cost more than joining the person on again.
{{ config(materialized='view') }}

-- Web events up to as-of with the person they belong to: the user id decides when present
-- (a shared device's events go to whoever was logged in), else the anonymous id.
with events as (
    select * from {{ ref('int_web__events_parsed') }}
    where occurred_at <= {{ as_of() }}
),

persons as (
    select * from {{ ref('int_identity__persons_assigned') }}
),

final as (
    select
        events.*,
        coalesce(by_user.person_id, by_device.person_id) as person_id
    from events
    {{ web_event_person_joins('events', 'persons') }}
)

select * from final
where person_id is not null
