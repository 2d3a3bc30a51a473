{#- Every consent-relevant signal with its person and time, from the ESP, the CRMs and identify,
    for the people in `persons`: the relation int_identity__persons_assigned, or the name of a
    CTE of some of its rows (macro web_events_of). (Persons are joined by name, not through a
    CTE: a CTE read more than once is materialized whole, while each join's identifier type
    filter reaches the table scan.) -#}
{% macro consent_signals(persons) -%}
with esp as (
    select
        persons.person_id,
        case
            when events.event_type = 'spamreport' then 'complaint'
            when events.event_type = 'bounce' then 'bounce'
            when events.event_type = 'dropped' and lower(events.bounce_reason) like '%bounce%'
                then 'bounce'
            when events.event_type = 'delivered' then 'delivered'
            when events.event_type in ('unsubscribe', 'group_unsubscribe') then 'opt_out'
            when events.event_type = 'group_resubscribe' then 'explicit_opt_in'
        end as signal,
        events.occurred_at,
        'esp_events' as source
    from {{ ref('stg_esp__events') }} as events
    inner join {{ persons }} as persons
        on persons.identifier_type = 'email' and persons.identifier_value = events.email
),

crm as (
    select
        persons.person_id,
        case when contacts.email_optout then 'opt_out' else 'crm_opt_in' end as signal,
        contacts.updated_at as occurred_at,
        'hubspot_contacts' as source
    from {{ ref('stg_hubspot__contacts') }} as contacts
    inner join {{ persons }} as persons
        on persons.identifier_type = 'hubspot_id'
        and persons.identifier_value = contacts.contact_id
    where contacts.email_optout is not null

    union all

    -- Salesforce's HasOptedOutOfEmail = true is an unsubscribe; false is no opt-in (it is the
    -- field's default, not a choice the person made).
    select persons.person_id, 'opt_out', records.updated_at, records.source
    from (
        select contact_id as record_id, updated_at, 'salesforce_contacts' as source
        from {{ ref('stg_salesforce__contacts') }}
        where has_opted_out_of_email
        union all
        select lead_id, updated_at, 'salesforce_leads'
        from {{ ref('stg_salesforce__leads') }}
        where has_opted_out_of_email
    ) as records
    inner join {{ persons }} as persons
        on persons.identifier_type = 'salesforce_id'
        and persons.identifier_value = records.record_id
),

identify as (
    select
        person_id,
        case when traits_unsubscribed then 'opt_out' else 'explicit_opt_in' end as signal,
        occurred_at,
        'web_events' as source
    from ({{ web_events_of(ref('int_web__profile_events'), persons) }})
    where message_type = 'identify' and (traits_unsubscribed or traits_email_opt_in)
),

final as (
    select * from esp where signal is not null
    union all
    select * from crm
    union all
    select * from identify
)

select * from final
{%- endmacro %}
