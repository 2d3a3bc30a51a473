-- A view, as int_web__events_attributed is: its readers each take the event types they need.
{{ config(materialized='view') }}

-- The profile events (identify, cart and order events) up to as-of with the person they belong
-- to, by the rule of int_web__events_attributed: the user id decides when present, else the
-- anonymous id.
with events as (
    select * from {{ ref('int_web__profile_events') }}
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
