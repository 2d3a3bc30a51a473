{{
    config(
        materialized='incremental',
        unique_key='person_id',
        incremental_strategy='merge',
        merge_clauses=merge_removing('DBT_INTERNAL_SOURCE.profile_fingerprint is null'),
        on_schema_change='sync_all_columns'
    )
}}

-- One row per person: the unified profile email personalization reads. What depends on the
-- moment it is read at (days since, percentiles, RFM scores) is in customer_profiles_as_of.
--
-- Incremental by person (macros/changed_people.sql): a run works out again the profiles of
-- the people any input of the person-level models changed for since the newest refreshed_at it
-- holds, and of those whose web activity, demographics or cart a person-level model rewrote
-- since (a page view, enrichment, a new catalog); it writes only the rows whose content
-- changed (profile_fingerprint, a hash of every column but the time), so refreshed_at says
-- when a person's profile last changed. A person who is gone (merged into another, or erased)
-- gets a row without a fingerprint, which deletes theirs (macro merge_removing).
{%- set inputs = ['web', 'web_emails', 'esp', 'crm', 'shop'] %}
{%- if not execute %}{% do affected_people(inputs) %}{% endif %}
{#- In an incremental run, only the affected people's rows of each person-level model are read. #}
{%- set theirs = 'person_id in (select person_id from affected)' if is_incremental() else 'true' %}
with
{%- if is_incremental() %}
{%- set since = changed_since(['refreshed_at', 'profile_fingerprint']) %}
{%- set rewritten %}
    select person_id
    from {{ ref('int_person__web_activity_aggregated') }}
    where built_at > {{ since }}
    union all
    select person_id
    from {{ ref('int_person__demographics_merged') }}
    where written_at > {{ since }}
    union all
    select person_id from {{ ref('int_person__open_carts') }} where written_at > {{ since }}
{%- endset %}
{{ affected_people(inputs, since, rewritten) }}
{%- endif %}

people as (
    select person_id, count(*) as identifier_count
    from {{ person_identifiers() }}
    group by person_id
),

emails as (
    select * from {{ ref('int_person__emails_ranked') }} where email_rank = 1 and {{ theirs }}
),

demographics as (
    select * from {{ ref('int_person__demographics_merged') }} where {{ theirs }}
),

web as (
    select * from {{ ref('int_person__web_activity_aggregated') }} where {{ theirs }}
),

engagement as (
    select * from {{ ref('int_person__email_engagement_counted') }} where {{ theirs }}
),

transactions as (
    select * from {{ ref('int_person__orders_summarized') }} where {{ theirs }}
),

carts as (
    select * from {{ ref('int_person__open_carts') }} where {{ theirs }}
),

consent as (
    select * from {{ ref('int_person__email_status_decided') }} where {{ theirs }}
),

final as (
    select
        people.person_id,
        emails.email,
        people.identifier_count,
        {{ make_struct([
            ('first_name', 'demographics.first_name'),
            ('last_name', 'demographics.last_name'),
            ('city', 'demographics.city'),
            ('country', 'demographics.country'),
            ('lead_source', 'demographics.lead_source'),
            ('lifecycle_stage', 'demographics.lifecycle_stage'),
            ('lead_status', 'demographics.lead_status'),
            ('company', 'demographics.company'),
            ('job_title', 'demographics.job_title'),
            ('industry', 'demographics.industry'),
            ('company_size', 'demographics.company_size'),
            ('age_range', 'demographics.age_range'),
            ('household_income', 'demographics.household_income'),
            ('enrichment_providers', 'demographics.enrichment_providers'),
        ]) }} as demographics,
        {{ make_struct([
            ('page_views', 'coalesce(web.page_views, 0)'),
            ('product_views', 'coalesce(web.product_views, 0)'),
            ('sessions', 'coalesce(web.session_count, 0)'),
            ('first_seen_at', 'web.first_seen_at'),
            ('last_seen_at', 'web.last_seen_at'),
            ('last_cart_event_at', 'web.last_cart_event_at'),
            ('product_interests', 'web.top_categories'),
            ('recently_viewed_products', 'web.recently_viewed_products'),
            ('emails_delivered', 'coalesce(engagement.emails_delivered, 0)'),
            ('email_opens', 'coalesce(engagement.email_opens, 0)'),
            ('email_clicks', 'coalesce(engagement.email_clicks, 0)'),
            ('last_email_open_at', 'engagement.last_open_at'),
            ('last_email_click_at', 'engagement.last_click_at'),
            ('last_email_engagement_at', 'engagement.last_email_engagement_at'),
        ]) }} as behavior,
        {{ make_struct([
            ('order_count', 'coalesce(transactions.order_count, 0)'),
            ('lifetime_value', 'coalesce(transactions.lifetime_value, 0)'),
            ('average_order_value', 'transactions.average_order_value'),
            ('first_order_at', 'transactions.first_order_at'),
            ('last_order_at', 'transactions.last_order_at'),
            ('open_cart', make_struct([
                ('product_ids', 'carts.product_ids'),
                ('value', 'carts.cart_value'),
                ('last_added_at', 'carts.last_added_at'),
            ])),
        ]) }} as transactions,
        {{ make_struct([
            ('email_status', "coalesce(consent.email_status, 'unknown')"),
            ('interests', 'web.top_categories'),
            ('communication', make_struct([
                ('channel', "'email'"),
                ('last_opt_in_at', 'consent.last_opt_in_at'),
                ('last_opt_out_at', 'consent.last_opt_out_at'),
                ('last_bounce_at', 'consent.last_bounce_at'),
                ('complaints', 'coalesce(consent.complaints, 0)'),
            ])),
            ('consent_updated_at', 'consent.consent_updated_at'),
        ]) }} as preferences
    from people
    left join emails using (person_id)
    left join demographics using (person_id)
    left join web using (person_id)
    left join engagement using (person_id)
    left join transactions using (person_id)
    left join carts using (person_id)
    left join consent using (person_id)
),

fingerprinted as (
    select
        *,
        hash(email, identifier_count, demographics, behavior, transactions, preferences)
            as profile_fingerprint,
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }}) as refreshed_at
    from final
)

{% if is_incremental() %}
{#- A table built before fingerprints were kept is written whole, once. -#}
{%- set tracked = holds_column('profile_fingerprint') %}
select fingerprinted.*
from fingerprinted
left join {{ this }} as held using (person_id)
{%- if tracked %}
where held.profile_fingerprint is distinct from fingerprinted.profile_fingerprint
{%- endif %}

union all by name

{%- if tracked %}
select held.* replace (cast(null as ubigint) as profile_fingerprint)
{%- else %}
select held.*, cast(null as ubigint) as profile_fingerprint
{%- endif %}
from {{ this }} as held
where held.person_id in (select person_id from affected)
    and not exists (select 1 from final where final.person_id = held.person_id)
{% else %}
select * from fingerprinted
{% endif %}
