-- Every observed link between two identifiers, with the source row and rule that made it.
-- An identifier observed alone is a link to itself, so that it becomes a person too.
-- Web events first collapse to their distinct identifier combinations (a person's page views
-- and tracks repeat the same few), keeping each combination's first event (the lowest id among
-- events at the same moment) and its count.
-- Junk identifiers ('null', 'undefined', ...) are left out where they can occur: the parse nulls
-- them in web events' anonymous, user and previous ids, and every email in the lake passed the
-- landing's address check, so only the CRM's and the shop's ids are checked here (checking every
-- web and ESP event again cost half of this model's time).
with web as (
    select
        message_type,
        anonymous_id,
        user_id,
        previous_id,
        traits_email,
        min(occurred_at) as occurred_at,
        arg_min(event_id, (occurred_at, event_id)) as event_id,
        count(*) as observations
    from {{ ref('int_web__events_parsed') }}
    group by message_type, anonymous_id, user_id, previous_id, traits_email
),

web_links as (
    select 'anonymous_id' as left_type, anonymous_id as left_value,
           'user_id' as right_type, user_id as right_value,
           case when message_type = 'identify' then 'identify' else 'event_ids' end as rule,
           'web_events' as source, event_id as source_record_id, occurred_at, observations
    from web
    where anonymous_id is not null and user_id is not null

    union all

    select 'user_id', user_id, 'email', traits_email, 'identify_email',
           'web_events', event_id, occurred_at, observations
    from web
    where message_type = 'identify' and user_id is not null and traits_email is not null

    union all

    select 'anonymous_id', anonymous_id, 'email', traits_email, 'identify_email',
           'web_events', event_id, occurred_at, observations
    from web
    where message_type = 'identify' and user_id is null and anonymous_id is not null
        and traits_email is not null

    union all

    select 'anonymous_id', previous_id, 'user_id', user_id, 'alias',
           'web_events', event_id, occurred_at, observations
    from web
    where message_type = 'alias' and previous_id is not null and user_id is not null

    union all

    select 'anonymous_id', anonymous_id, 'anonymous_id', anonymous_id, 'observed',
           'web_events', event_id, occurred_at, observations
    from web
    where anonymous_id is not null and user_id is null

    union all

    select 'user_id', user_id, 'user_id', user_id, 'observed',
           'web_events', event_id, occurred_at, observations
    from web
    where user_id is not null
),

crm_links as (
    select 'hubspot_id' as left_type, contact_id as left_value,
           case when email is null then 'hubspot_id' else 'email' end as right_type,
           coalesce(email, contact_id) as right_value,
           'crm_contact' as rule, 'hubspot_contacts' as source,
           contact_id as source_record_id, created_at as occurred_at, 1 as observations
    from {{ ref('stg_hubspot__contacts') }}
),

shop_links as (
    select 'customer_id' as left_type, customer_id as left_value,
           'email' as right_type, email as right_value,
           'shop_customer' as rule, 'shop_customers' as source,
           customer_id as source_record_id, created_at as occurred_at, 1 as observations
    from {{ ref('stg_shop__customers') }}

    union all

    select 'customer_id', customer_id, 'customer_id', customer_id, 'observed',
           'shop_orders', order_id, created_at, 1
    from {{ ref('stg_shop__orders') }}
    where customer_id is not null
),

esp_links as (
    select 'email' as left_type, email as left_value, 'email' as right_type,
           email as right_value, 'observed' as rule, 'esp_events' as source,
           min(event_id) as source_record_id, min(occurred_at) as occurred_at,
           1 as observations
    from {{ ref('stg_esp__events') }}
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

final as (
    select
        {{ dbt.hash("left_type || ':' || left_value || '|' || right_type || ':' || right_value") }}
            as link_id,
        left_type,
        left_value,
        right_type,
        right_value,
        arg_min(rule, occurred_at) as rule,
        arg_min(source, occurred_at) as source,
        arg_min(source_record_id, occurred_at) as source_record_id,
        min(occurred_at) as first_observed_at,
        cast(sum(observations) as bigint) as observations
    from clean
    group by left_type, left_value, right_type, right_value
)

select * from final
