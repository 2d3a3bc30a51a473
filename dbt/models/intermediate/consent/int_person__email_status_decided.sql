{{ config(**person_incremental_config()) }}

-- One row per person with a consent signal: email_status by the rules, in their order.
-- Incremental by person (macros/changed_people.sql): a run decides again for the people with an
-- ESP event, a profile event or a CRM record written since its last, and those whose
-- identifiers changed, from all of their signals.
{%- set inputs = ['web', 'esp', 'crm'] %}
{%- if not execute %}
    {%- do affected_people(inputs) %}
    {%- do consent_signals('affected_identifiers') %}
{%- endif %}
with
{%- if is_incremental() %}
{{ affected_people(inputs) }}

signals as (
    {{ consent_signals('affected_identifiers') | indent(4) }}
),
{%- else %}

signals as (
    select * from {{ ref('int_person__consent_signals_unioned') }}
),
{%- endif %}

per_person as (
    select
        person_id,
        count(*) filter (where signal = 'complaint') as complaints,
        max(occurred_at) filter (where signal = 'bounce') as last_bounce_at,
        max(occurred_at) filter (where signal = 'delivered') as last_delivered_at,
        max(occurred_at) filter (where signal = 'opt_out') as last_opt_out_at,
        max(occurred_at) filter (where signal = 'explicit_opt_in') as last_explicit_opt_in_at,
        max(occurred_at) filter (where signal in ('explicit_opt_in', 'crm_opt_in'))
            as last_opt_in_at,
        max(occurred_at) as consent_updated_at
    from signals
    group by person_id
),

decided as (
    select
        *,
        case
            when complaints > 0 then 'complained'
            when last_bounce_at is not null
                and (last_delivered_at is null or last_delivered_at <= last_bounce_at)
                then 'bounced'
            when last_opt_out_at is not null
                and (last_explicit_opt_in_at is null or last_explicit_opt_in_at <= last_opt_out_at)
                then 'unsubscribed'
            when last_opt_in_at is not null then 'subscribed'
            else 'unknown'
        end as email_status
    from per_person
)

{{ person_rows('decided') }}
