-- One row per person: names and place from the CRMs (HubSpot, Salesforce; with the CRM's
-- lifecycle stage, lead status and lead source), the shop and identify traits (most
-- recent first), plus third-party enrichment attributes of their addresses.
-- (Persons are joined by name, not through a CTE: a CTE read more than once is materialized
-- whole, while each join's identifier type filter reaches the table scan.)
with observed as (
    select persons.person_id, contacts.first_name, contacts.last_name, contacts.city,
           contacts.country, cast(null as varchar) as lead_source,
           contacts.lifecycle_stage, cast(null as varchar) as lead_status,
           contacts.updated_at as observed_at, 1 as source_rank
    from {{ ref('stg_hubspot__contacts') }} as contacts
    inner join {{ ref('int_identity__persons_assigned') }} as persons
        on persons.identifier_type = 'hubspot_id'
        and persons.identifier_value = contacts.contact_id
    union all
    select persons.person_id, contacts.first_name, contacts.last_name, contacts.city,
           contacts.country, contacts.lead_source, null, null, contacts.updated_at, 1
    from {{ ref('stg_salesforce__contacts') }} as contacts
    inner join {{ ref('int_identity__persons_assigned') }} as persons
        on persons.identifier_type = 'salesforce_id'
        and persons.identifier_value = contacts.contact_id
    union all
    select persons.person_id, leads.first_name, leads.last_name, leads.city, leads.country,
           leads.lead_source, case when not leads.is_converted then 'lead' end, leads.lead_status,
           leads.updated_at, 1
    from {{ ref('stg_salesforce__leads') }} as leads
    inner join {{ ref('int_identity__persons_assigned') }} as persons
        on persons.identifier_type = 'salesforce_id'
        and persons.identifier_value = leads.lead_id
    union all
    select persons.person_id, customers.first_name, customers.last_name, null, null,
           null, null, null, customers.updated_at, 2
    from {{ ref('stg_shop__customers') }} as customers
    inner join {{ ref('int_identity__persons_assigned') }} as persons
        on persons.identifier_type = 'customer_id'
        and persons.identifier_value = customers.customer_id
    union all
    select person_id, traits_first_name, traits_last_name, traits_city, traits_country,
           null, null, null, occurred_at, 3
    from {{ ref('int_web__profile_events_resolved') }}
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
        {{ list_agg('distinct provider', 'provider') }} as enrichment_providers
    from {{ ref('stg_enrichment__attributes') }} as attributes
    inner join {{ ref('int_identity__persons_assigned') }} as persons
        on persons.identifier_type = 'email'
        and persons.identifier_value = attributes.email
    group by persons.person_id
),

final as (
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
        enrichment.enrichment_providers
    from names
    full outer join enrichment using (person_id)
)

select * from final
