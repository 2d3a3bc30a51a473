-- A view: its readers each take the columns and event types they need, and writing every web
-- event out a second time cost more than joining the person on again.
{{ config(materialized='view') }}

-- Web events with the person they belong to: the user id decides when present
-- (a shared device's events go to whoever was logged in), else the anonymous id.
{{ web_events_attributed(ref('int_web__events_parsed')) }}
