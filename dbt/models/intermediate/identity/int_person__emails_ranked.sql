{{
    config(
        materialized='incremental',
        unique_key='email',
        incremental_strategy='merge',
        merge_clauses=merge_removing('DBT_INTERNAL_SOURCE.written_at is null'),
        on_schema_change='sync_all_columns'
    )
}}

-- Every address of a person, ranked: the CRM's first, then the shop's, identify's, the ESP's;
-- the most recently seen wins within a source. Rank 1 is the primary address.
-- Incremental by person (macros/changed_people.sql): a run ranks again the addresses of the
-- people with an address named by a web event, an ESP event, a CRM record or a shop customer
-- written since its last, and of those whose identifiers changed; an address of theirs that is
-- no longer theirs leaves an empty row, which deletes its row.
{%- set inputs = ['web_emails', 'esp', 'crm', 'shop'] %}
{%- if not execute %}{% do affected_people(inputs) %}{% endif %}
{#- In an incremental run, only the affected people's addresses are read. #}
{%- set read = 'in (select email from persons)' if is_incremental() else 'is not null' %}
with
{%- if is_incremental() %}
{{ affected_people(inputs) }}
{%- endif %}

persons as (
    select person_id, identifier_value as email
    from {{ person_identifiers() }}
    where identifier_type = 'email'
),

seen as (
    select email, 1 as source_rank, updated_at as seen_at
    from {{ ref('stg_hubspot__contacts') }}
    where email {{ read }}
    union all
    select email, 2, updated_at
    from {{ ref('stg_shop__customers') }}
    where email {{ read }}
    union all
    select traits_email, 3, occurred_at
    from {{ ref('int_web__events_parsed') }}
    where traits_email {{ read }}
    union all
    select email, 4, max(occurred_at)
    from {{ ref('stg_esp__events') }}
    where email {{ read }}
    group by email
),

best as (
    select email, min(source_rank) as source_rank, max(seen_at) as last_seen_at
    from seen
    group by email
),

ranked as (
    select
        persons.person_id,
        persons.email,
        row_number() over (
            partition by persons.person_id
            order by coalesce(best.source_rank, 9), best.last_seen_at desc nulls last, persons.email
        ) as email_rank
    from persons
    left join best using (email)
)

select *, {{ written_at() }} as written_at from ranked
{%- if is_incremental() %}

union all

select held.person_id, held.email, null, null
from {{ this }} as held
where held.person_id in (select person_id from affected)
    and not exists (select 1 from ranked where ranked.email = held.email)
{%- endif %}
