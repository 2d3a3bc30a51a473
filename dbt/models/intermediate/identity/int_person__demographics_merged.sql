{{ config(**person_incremental_config()) }}

-- One row per person: names and place from the CRMs (HubSpot, Salesforce; with the CRM's
-- lifecycle stage, lead status and lead source), the shop and identify traits (most
-- recent first), plus third-party enrichment attributes of their addresses.
-- (Persons are joined by name, not through a CTE: a CTE read more than once is materialized
-- whole, while each join's identifier type filter reaches the table scan.)
--
-- Incremental by person (macros/changed_people.sql): a run merges again the people with a
-- profile event, a CRM record or a shop customer written since its last, those whose
-- identifiers changed and those whose enrichment attributes changed (enrichment_fingerprint,
-- a hash of their providers' attributes: enrichment files carry no time), from all of their
-- records.
{%- set enrichment_changed %}
    select coalesce(now.person_id, held.person_id)
    from enrichment_now as now
    full join (
        select person_id, enrichment_fingerprint
        from {{ this }}
        where enrichment_fingerprint is not null
    ) as held using (person_id)
    where now.enrichment_fingerprint is distinct from held.enrichment_fingerprint
{%- endset %}
{%- set enrichment_fingerprint =
    'bit_xor(hash(attributes.provider, attributes.email, attributes.attributes))' %}
{%- set inputs = ['web', 'crm', 'shop'] %}
{%- if not execute %}{% do affected_people(inputs) %}{% endif %}
{%- set persons = person_identifiers() %}
with
{%- if is_incremental() %}
enrichment_now as (
    select
        persons.person_id,
        {{ enrichment_fingerprint }} as enrichment_fingerprint
    from {{ ref('stg_enrichment__attributes') }} as attributes
    inner join {{ ref('int_identity__persons_assigned') }} as persons
        on persons.identifier_type = 'email'
        and persons.identifier_value = attributes.email
    group by persons.person_id
),

{%- set since = changed_since(['written_at', 'enrichment_fingerprint']) %}
{{ affected_people(inputs, since, enrichment_changed if holds_column('enrichment_fingerprint')) }}
{%- endif %}

observed as (
    select persons.person_id, contacts.first_name, contacts.last_name, contacts.city,
           contacts.country, cast(null as varchar) as lead_source,
           contacts.lifecycle_stage, cast(null as varchar) as lead_status,
           contacts.updated_at as observed_at, 1 as source_rank
    from {{ ref('stg_hubspot__contacts') }} as contacts
    inner join {{ persons }} as persons
        on persons.identifier_type = 'hubspot_id'
        and persons.identifier_value = contacts.contact_id
    union all
    select persons.person_id, contacts.first_name, contacts.last_name, contacts.city,
           contacts.country, contacts.lead_source, null, null, contacts.updated_at, 1
    from {{ ref('stg_salesforce__contacts') }} as contacts
    inner join {{ persons }} as persons
        on persons.identifier_type = 'salesforce_id'
        and persons.identifier_value = contacts.contact_id
    union all
    select persons.person_id, leads.first_name, leads.last_name, leads.city, leads.country,
           leads.lead_source, case when not leads.is_converted then 'lead' end, leads.lead_status,
           leads.updated_at, 1
    from {{ ref('stg_salesforce__leads') }} as leads
    inner join {{ persons }} as persons
        on persons.identifier_type = 'salesforce_id'
        and persons.identifier_value = leads.lead_id
    union all
    select persons.person_id, customers.first_name, customers.last_name, null, null,
           null, null, null, customers.updated_at, 2
    from {{ ref('stg_shop__customers') }} as customers
    inner join {{ persons }} as persons
        on persons.identifier_type = 'customer_id'
        and persons.identifier_value = customers.customer_id
    union all
    select person_id, traits_first_name, traits_last_name, traits_city, traits_country,
           null, null, null, occurred_at, 3
    from ({{ web_events_of(ref('int_web__profile_events'), persons) }})
    where message_type = 'identify'
),

names as (
    select
        person_id,
        arg_max(first_name, observed_at) filter (where first_name is not null) as first_name,
        arg_max(last_name, observed_at) filter (where last_name is not null) as last_name,
        arg_max(city, observed_at) filter (where city is not null) as city,
        arg_max(country, observed_at) filter (where country is not null) as country,
        arg_max(lead_source, observed_at) filter (where lead_source is not null) as lead_source,
        arg_max(lifecycle_stage, observed_at)
            filter (where lifecycle_stage is not null) as lifecycle_stage,
        arg_max(lead_status, observed_at) filter (where lead_status is not null) as lead_status
    from observed
    group by person_id
),

enrichment as (
    select
        persons.person_id,
        max({{ json_text('attributes', '$.company') }}) as company,
        max({{ json_text('attributes', '$.job_title') }}) as job_title,
        max({{ json_text('attributes', '$.industry') }}) as industry,
        max({{ json_text('attributes', '$.company_size') }}) as company_size,
        max({{ json_text('attributes', '$.age_range') }}) as age_range,
        max({{ json_text('attributes', '$.household_income') }}) as household_income,
        {{ list_agg('distinct provider', 'provider') }} as enrichment_providers,
        {{ enrichment_fingerprint }} as enrichment_fingerprint
    from {{ ref('stg_enrichment__attributes') }} as attributes
    inner join {{ persons }} as persons
        on persons.identifier_type = 'email'
        and persons.identifier_value = attributes.email
    group by persons.person_id
),

merged as (
    select
        coalesce(names.person_id, enrichment.person_id) as person_id,
        names.first_name,
        names.last_name,
        names.city,
        names.country,
        names.lead_source,
        names.lifecycle_stage,
        names.lead_status,
        enrichment.company,
        enrichment.job_title,
        enrichment.industry,
        enrichment.company_size,
        enrichment.age_range,
        enrichment.household_income,
        enrichment.enrichment_providers,
        enrichment.enrichment_fingerprint
    from names
    full outer join enrichment using (person_id)
)

{{ person_rows('merged') }}
