{{
    config(
        materialized='incremental',
        unique_key='person_id',
        incremental_strategy='merge',
        merge_clauses=merge_removing('DBT_INTERNAL_SOURCE.first_seen_at is null'),
        on_schema_change='sync_all_columns'
    )
}}

-- depends_on: {{ ref('int_web__events_parsed') }}
-- One row per person: page views, sessions, recency and product interests from web events.
--
-- Incremental: a run recomputes only the people whose row can have changed, from all of their
-- events (sessions need a person's events in order), and keeps everyone else's row:
--   * people with an event in the parse's window (the received days Dagster names for the run,
--     new or landed again; macro received_dates);
--   * people whose inputs_fingerprint changed: their user and anonymous ids (which events are
--     theirs: a merge, a split, an erasure), the product catalog's categories or the session
--     timeout, which recompute everyone;
--   * people who are gone (merged into another, or erased): their row is deleted.
-- A recomputed person without events comes out as an empty row, which deletes their row
-- (macro merge_removing).
-- A full refresh (`dbt build --full-refresh`) computes everyone, as the first build does.
-- (Persons are joined by name, not through a CTE: a CTE read more than once is materialized
-- whole, while each use's identifier type filter reaches the table scan. For the same reason
-- `events`, read four times, holds only the columns the aggregates read: with every parsed
-- column, 22 million materialized events spilled to disk under the memory limit.)
{%- set read = [
    'message_type', 'event_name', 'occurred_at', 'product_id', 'product_category'
] %}
with products as (
    select * from {{ ref('stg_shop__products') }}
),

inputs as (
    select
        person_id,
        {{ set_fingerprint('identifier_id') }}
            || '|' || (
                select {{ set_fingerprint("product_id || ':' || coalesce(category, '')") }}
                from products
            )
            || '|{{ var("session_timeout_minutes") }}' as inputs_fingerprint
    from {{ ref('int_identity__persons_assigned') }}
    where identifier_type in ('user_id', 'anonymous_id')
    group by person_id
),

{% if is_incremental() %}
{#- A table built before these columns existed holds no fingerprints: everyone is recomputed. -#}
{%- set tracked = holds_column('inputs_fingerprint') %}
{#- So does a run that names no window (dbt run by hand): every event counts as new. -#}
{%- set days = received_dates('web_events') if tracked else none %}
held as (
    {%- if tracked %}
    select person_id, inputs_fingerprint from {{ this }}
    {%- else %}
    select
        person_id,
        cast(null as {{ dbt.type_string() }}) as inputs_fingerprint
    from {{ this }}
    {%- endif %}
),

new_events as (
    select user_id, anonymous_id
    from {{ ref('int_web__events_parsed') }}
    where {{ received_in_window('received_date', days) }}
),

affected as (
    select coalesce(by_user.person_id, by_device.person_id) as person_id
    from new_events
    {{ web_event_person_joins('new_events', ref('int_identity__persons_assigned')) }}
    where coalesce(by_user.person_id, by_device.person_id) is not null

    union

    select inputs.person_id
    from inputs
    left join held using (person_id)
    where held.inputs_fingerprint is distinct from inputs.inputs_fingerprint

    union

    select held.person_id
    from held
    where not exists (select 1 from inputs where inputs.person_id = held.person_id)
),

affected_identifiers as (
    select persons.person_id, persons.identifier_type, persons.identifier_value
    from {{ ref('int_identity__persons_assigned') }} as persons
    inner join affected using (person_id)
    where persons.identifier_type in ('user_id', 'anonymous_id')
),

-- The affected people's events, attributed as int_web__events_attributed does: the user id
-- decides when present (every parsed user id is an identifier of some person), else the
-- anonymous id. Only the affected people's identifiers are joined, so an event of someone else
-- finds no person and is left out.
events as (
    select *
    from (
        select
            {%- for column in read %}
            parsed.{{ column }},
            {%- endfor %}
            case
                when parsed.user_id is not null then by_user.person_id
                else by_device.person_id
            end as person_id
        from {{ ref('int_web__events_parsed') }} as parsed
        {{ web_event_person_joins('parsed', 'affected_identifiers') }}
    )
    where person_id is not null
),
{% else %}
events as (
    select person_id, {{ read | join(', ') }}
    from {{ ref('int_web__events_attributed') }}
),
{% endif %}

sessionized as (
    select
        person_id,
        occurred_at,
        case
            when lag(occurred_at) over (partition by person_id order by occurred_at) is null
                or {{ dbt.datediff(
                    "lag(occurred_at) over (partition by person_id order by occurred_at)",
                    "occurred_at", "minute") }} > {{ var('session_timeout_minutes') }}
            then 1 else 0
        end as starts_session
    from events
),

sessions as (
    select person_id, sum(starts_session) as session_count
    from sessionized
    group by person_id
),

category_views as (
    select
        events.person_id,
        coalesce(events.product_category, products.category) as category,
        count(*) as views,
        max(events.occurred_at) as last_viewed_at
    from events
    left join products on products.product_id = events.product_id
    where events.event_name = 'Product Viewed'
        and coalesce(events.product_category, products.category) is not null
    group by 1, 2
),

-- Only each person's first three categories and five products are aggregated into lists, so
-- memory follows the number of people, not the number of views.
top_categories as (
    select
        person_id,
        {{ list_agg('category', 'views desc, last_viewed_at desc, category') }} as categories
    from (
        select *
        from category_views
        qualify row_number() over (
            partition by person_id order by views desc, last_viewed_at desc, category
        ) <= 3
    )
    group by person_id
),

recent_views as (
    select person_id, product_id, max(occurred_at) as last_viewed_at
    from events
    where event_name = 'Product Viewed' and product_id is not null
    group by 1, 2
),

recently_viewed as (
    select
        person_id,
        {{ list_agg('product_id', 'last_viewed_at desc, product_id') }} as product_ids
    from (
        select *
        from recent_views
        qualify row_number() over (
            partition by person_id order by last_viewed_at desc, product_id
        ) <= 5
    )
    group by person_id
),

activity as (
    select
        person_id,
        count(*) filter (where message_type = 'page') as page_views,
        count(*) filter (where event_name = 'Product Viewed') as product_views,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        max(occurred_at) filter (where event_name in ('Product Added', 'Checkout Started'))
            as last_cart_event_at,
        max(occurred_at) filter (where event_name = 'Order Completed') as last_web_order_at
    from events
    group by person_id
),

final as (
    select
        {%- if is_incremental() %}
        affected.person_id,
        {%- else %}
        activity.person_id,
        {%- endif %}
        activity.page_views,
        activity.product_views,
        activity.first_seen_at,
        activity.last_seen_at,
        activity.last_cart_event_at,
        activity.last_web_order_at,
        sessions.session_count,
        top_categories.categories[1:3] as top_categories,
        recently_viewed.product_ids[1:5] as recently_viewed_products,
        inputs.inputs_fingerprint
    {%- if is_incremental() %}
    from affected
    left join activity using (person_id)
    {%- else %}
    from activity
    {%- endif %}
    left join sessions using (person_id)
    left join top_categories using (person_id)
    left join recently_viewed using (person_id)
    left join inputs using (person_id)
)

-- When this run started: its tests read the rows written since they last passed (tested_rows.sql).
select *, {{ built_at() }} as built_at from final
