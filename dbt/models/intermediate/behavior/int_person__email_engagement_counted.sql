{{ config(**person_incremental_config()) }}

-- One row per person: what the ESP saw of their email (sends, opens, clicks).
-- Incremental by person (macros/changed_people.sql): a run counts again the people with an ESP
-- event built since its last, and those whose identifiers changed, from all of their events.
{%- set inputs = ['esp'] %}
{%- if not execute %}{% do affected_people(inputs) %}{% endif %}
with
{%- if is_incremental() %}
{{ affected_people(inputs) }}
{%- endif %}

events as (
    select * from {{ ref('stg_esp__events') }}
),

persons as (
    select person_id, identifier_value as email
    from {{ person_identifiers() }}
    where identifier_type = 'email'
),

counted as (
    select
        persons.person_id,
        count(*) filter (where events.event_type = 'delivered') as emails_delivered,
        count(*) filter (where events.event_type = 'open') as email_opens,
        count(*) filter (where events.event_type = 'click') as email_clicks,
        max(events.occurred_at) filter (where events.event_type = 'open') as last_open_at,
        max(events.occurred_at) filter (where events.event_type = 'click') as last_click_at,
        max(events.occurred_at) filter (where events.event_type in ('open', 'click'))
            as last_email_engagement_at
    from events
    inner join persons on persons.email = events.email
    group by persons.person_id
)

{{ person_rows('counted') }}
