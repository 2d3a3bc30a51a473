-- A view, as int_web__events_attributed is: its readers each take the event types they need.
{{ config(materialized='view') }}

-- The profile events (identify, cart and order events) with the person they belong
-- to, by the rule of int_web__events_attributed.
{{ web_events_attributed(ref('int_web__profile_events')) }}
