{{
    config(
        materialized='incremental',
        unique_key='link_id',
        incremental_strategy='merge',
        merge_clauses=merge_removing('DBT_INTERNAL_SOURCE.left_type is null'),
        on_schema_change='sync_all_columns'
    )
}}

-- Every observed link between two identifiers, with the source row and rule that made it.
-- An identifier observed alone is a link to itself, so that it becomes a person too.
-- Web events first collapse to their distinct identifier combinations (a person's page views
-- and tracks repeat the same few), keeping each combination's first event (the lowest id among
-- events at the same moment) and its count.
-- Junk identifiers ('null', 'undefined', ...) are left out where they can occur: the parse nulls
-- them in web events' anonymous, user and previous ids, and every email in the lake passed the
-- landing's address check, so only the CRM's and the shop's ids are checked here (checking every
-- web and ESP event again cost half of this model's time).
--
-- Incremental: each kind of link comes from one source, and a run recomputes from all of their
-- events only the links the new events can touch, keeping every other row:
--   * web links (Segment, GA4, Mixpanel: each link names the source whose event made it first)
--     made by a parsed event of the window (the received days Dagster names, macro
--     received_dates): when every one of those days is newer than the newest web day this model
--     holds, each is merged with its held row (earliest event, summed observations, newest
--     day), since the window's events were never counted. When a web day this model holds is
--     landed again, events it counted may have changed, so the web links of every user id, and
--     of every anonymous id seen without a user id, in the window are recomputed from all of
--     their events instead (every web link is made by events that share its user id, or
--     without one its anonymous id);
--   * ESP links of every address in an ESP event of the ESP window;
--   * every CRM (HubSpot, Salesforce) and shop link (small extracts, read whole each run), of which only those whose
--     values changed are written; a CRM or shop link no longer extracted comes out as an empty
--     row, which deletes its row (macro merge_removing). (Rewriting the unchanged ones cost a
--     million rows deleted and inserted a run at a million people, and would mark them all as
--     changed for the identity links mart.)
--   * every identity override (the seed identity_overrides, read whole), written like the CRM's
--     and the shop's links: one row per rule, kept apart from any observed link between the
--     same two identifiers (its link_id names the rule).
-- Events leave only through an erasure, which deletes their links too.
-- A full refresh (`dbt build --full-refresh`) collects every link, as the first build does.
-- (The event tables are named where they are read, not as CTEs: a CTE read more than once is
-- materialized whole.)
{#- A table built before last_received_date existed is collected whole, as it is when the run
    names no window (dbt run by hand). -#}
{%- set web_days = received_dates('web_events') %}
{%- set esp_days = received_dates('esp_events') %}
{%- set tracked = is_incremental() and web_days is not none and esp_days is not none
    and holds_column('last_received_date') %}
with
{% if tracked %}
{%- set newest_web = held_max('last_received_date', "source in " ~ web_sources()) %}
{%- set merge_web = newest_web is none or not (web_days | select('le', newest_web) | list) %}
{%- if merge_web %}
web_events as (
    select *
    from {{ ref('int_web__events_parsed') }}
    where {{ received_in_window('received_date', web_days) }}
),
{%- else %}
window_web as (
    select user_id, anonymous_id
    from {{ ref('int_web__events_parsed') }}
    where {{ received_in_window('received_date', web_days) }}
),

web_events as (
    select *
    from {{ ref('int_web__events_parsed') }}
    where user_id in (select user_id from window_web where user_id is not null)

    union all

    select *
    from {{ ref('int_web__events_parsed') }}
    where user_id is null
        and anonymous_id in (select anonymous_id from window_web where user_id is null)
),
{%- endif %}

esp_touched as (
    select *
    from {{ ref('stg_esp__events') }}
    where email in (
        select email
        from {{ ref('stg_esp__events') }}
        where {{ received_in_window('received_date', esp_days) }}
    )
),
{% else %}
web_events as (
    select * from {{ ref('int_web__events_parsed') }}
),

esp_touched as (
    select * from {{ ref('stg_esp__events') }}
),
{% endif %}

web as (
    select
        message_type,
        anonymous_id,
        user_id,
        previous_id,
        traits_email,
        source,
        min(occurred_at) as occurred_at,
        arg_min(event_id, (occurred_at, event_id)) as event_id,
        count(*) as observations,
        max(received_date) as received_date
    from web_events
    group by message_type, anonymous_id, user_id, previous_id, traits_email, source
),

web_links as (
    select 'anonymous_id' as left_type, anonymous_id as left_value,
           'user_id' as right_type, user_id as right_value,
           case when message_type = 'identify' then 'identify' else 'event_ids' end as rule,
           source, event_id as source_record_id, occurred_at, observations, received_date
    from web
    where anonymous_id is not null and user_id is not null

    union all

    select 'user_id', user_id, 'email', traits_email,
           case when message_type = 'identify' then 'identify_email' else 'event_email' end,
           source, event_id, occurred_at, observations, received_date
    from web
    where {{ names_its_email('message_type', 'source') }}
        and user_id is not null and traits_email is not null

    union all

    select 'anonymous_id', anonymous_id, 'email', traits_email,
           case when message_type = 'identify' then 'identify_email' else 'event_email' end,
           source, event_id, occurred_at, observations, received_date
    from web
    where {{ names_its_email('message_type', 'source') }}
        and user_id is null and anonymous_id is not null and traits_email is not null

    union all

    select 'anonymous_id', previous_id, 'user_id', user_id, 'alias',
           source, event_id, occurred_at, observations, received_date
    from web
    where message_type = 'alias' and previous_id is not null and user_id is not null

    union all

    select 'anonymous_id', anonymous_id, 'anonymous_id', anonymous_id, 'observed',
           source, event_id, occurred_at, observations, received_date
    from web
    where anonymous_id is not null and user_id is null

    union all

    select 'user_id', user_id, 'user_id', user_id, 'observed',
           source, event_id, occurred_at, observations, received_date
    from web
    where user_id is not null
),

crm_links as (
    select 'hubspot_id' as left_type, contact_id as left_value,
           case when email is null then 'hubspot_id' else 'email' end as right_type,
           coalesce(email, contact_id) as right_value,
           'crm_contact' as rule, 'hubspot_contacts' as source,
           contact_id as source_record_id, created_at as occurred_at, 1 as observations,
           cast(null as date) as received_date
    from {{ ref('stg_hubspot__contacts') }}

    union all

    select 'salesforce_id', contact_id,
           case when email is null then 'salesforce_id' else 'email' end,
           coalesce(email, contact_id), 'crm_contact', 'salesforce_contacts', contact_id,
           created_at, 1, cast(null as date)
    from {{ ref('stg_salesforce__contacts') }}

    union all

    select 'salesforce_id', lead_id,
           case when email is null then 'salesforce_id' else 'email' end,
           coalesce(email, lead_id), 'crm_contact', 'salesforce_leads', lead_id,
           created_at, 1, cast(null as date)
    from {{ ref('stg_salesforce__leads') }}

    union all

    -- A converted Lead and the Contact it became are one person.
    select 'salesforce_id', lead_id, 'salesforce_id', converted_contact_id, 'lead_converted',
           'salesforce_leads', lead_id, created_at, 1, cast(null as date)
    from {{ ref('stg_salesforce__leads') }}
    where is_converted and converted_contact_id is not null
),

shop_links as (
    select 'customer_id' as left_type, customer_id as left_value,
           'email' as right_type, email as right_value,
           'shop_customer' as rule, 'shop_customers' as source,
           customer_id as source_record_id, created_at as occurred_at, 1 as observations,
           cast(null as date) as received_date
    from {{ ref('stg_shop__customers') }}

    union all

    select 'customer_id', customer_id, 'customer_id', customer_id, 'observed',
           'shop_orders', order_id, created_at, 1, cast(null as date)
    from {{ ref('stg_shop__orders') }}
    where customer_id is not null
),

esp_links as (
    select 'email' as left_type, email as left_value, 'email' as right_type,
           email as right_value, 'observed' as rule, 'esp_events' as source,
           min(event_id) as source_record_id, min(occurred_at) as occurred_at,
           1 as observations, max(received_date) as received_date
    from esp_touched
    group by email
),

checked_links as (
    select *
    from (
        select * from crm_links
        union all select * from shop_links
    )
    where not {{ is_junk_identifier('left_value') }}
        and not {{ is_junk_identifier('right_value') }}
),

clean as (
    select * from web_links
    union all select * from checked_links
    union all select * from esp_links
),

-- One event can make the same link under two rules (an alias whose anonymous id is its
-- previous id is also an event with both ids): the rule breaks the tie, so every build keeps
-- the same one.
collected as (
    select
        {{ dbt.hash("left_type || ':' || left_value || '|' || right_type || ':' || right_value") }}
            as link_id,
        left_type,
        left_value,
        right_type,
        right_value,
        arg_min(rule, (occurred_at, source_record_id, rule)) as rule,
        arg_min(source, (occurred_at, source_record_id, rule)) as source,
        arg_min(source_record_id, (occurred_at, source_record_id, rule)) as source_record_id,
        min(occurred_at) as first_observed_at,
        cast(sum(observations) as bigint) as observations,
        max(received_date) as last_received_date
    from clean
    group by left_type, left_value, right_type, right_value
),

{%- if tracked and merge_web %}

-- The window's web links with what their held rows counted before. (Only web links are held
-- with a web analytics source. Testing the window's side in the join condition instead made DuckDB
-- plan a join that ran for minutes at a million people.)
merged as (
    select
        collected.link_id,
        collected.left_type,
        collected.left_value,
        collected.right_type,
        collected.right_value,
        {%- for column in ['rule', 'source', 'source_record_id', 'first_observed_at'] %}
        case
            when held.link_id is null
                or collected.first_observed_at < held.first_observed_at
                or (collected.first_observed_at = held.first_observed_at
                    and collected.source_record_id < held.source_record_id)
                then collected.{{ column }}
            else held.{{ column }}
        end as {{ column }},
        {%- endfor %}
        collected.observations + coalesce(held.observations, 0) as observations,
        greatest(
            collected.last_received_date,
            coalesce(held.last_received_date, collected.last_received_date)
        ) as last_received_date
    from collected
    left join {{ this }} as held
        on held.link_id = collected.link_id and held.source in {{ web_sources() }}
),
{%- else %}

merged as (
    select * from collected
),
{%- endif %}

-- The overrides, their identifiers as the links hold them (trimmed; addresses lower-case).
overrides as (
    select
        {{ dbt.hash("'override|' || rule || '|' || left_type || ':' || left_value || '|' || right_type || ':' || right_value") }}
            as link_id,
        left_type,
        left_value,
        right_type,
        right_value,
        rule,
        'identity_overrides' as source,
        'by ' || author || ': ' || reason as source_record_id,
        created_at as first_observed_at,
        cast(1 as bigint) as observations,
        cast(null as date) as last_received_date
    from (
        select
            case rule when 'link' then 'override_link' else rule end as rule,
            left_type,
            case when left_type = 'email' then lower(trim(left_value))
                else trim(left_value) end as left_value,
            right_type,
            case when right_type = 'email' then lower(trim(right_value))
                else trim(right_value) end as right_value,
            author,
            reason,
            created_at
        from {{ ref('identity_overrides') }}
    )
    qualify row_number() over (
        partition by rule, left_type, left_value, right_type, right_value
        order by created_at
    ) = 1
),

written as (
    select * from merged
    union all
    select * from overrides
),

final as (
    select * from written as collected
    {%- if tracked %}
    where collected.source not in (
            {{ crm_and_shop_sources() }}
        )
        or not exists (
            select 1
            from {{ this }} as held
            where held.link_id = collected.link_id
                {%- for column in [
                    'rule', 'source', 'source_record_id', 'first_observed_at', 'observations',
                    'last_received_date'
                ] %}
                and held.{{ column }} is not distinct from collected.{{ column }}
                {%- endfor %}
        )

    union all

    -- CRM and shop links no longer extracted and overrides removed: empty rows, which delete
    -- theirs (macro merge_removing).
    select
        held.link_id,
        null, null, null, null, null, null, null, null, null, null
    from {{ this }} as held
    where held.source in ({{ crm_and_shop_sources() }})
        and not exists (select 1 from written where written.link_id = held.link_id)
    {%- endif %}
)

-- When this run started: its tests read the rows written since they last passed (tested_rows.sql).
select *, {{ built_at() }} as built_at from final
