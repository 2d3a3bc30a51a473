{{ config(materialized='view') }}

-- One row per person: the last batch profile plus what the stream landed since it was built
-- (read at query time from the lake, so it moves within seconds without writing here).
-- People first seen in the stream get a provisional person_id until the next batch run.
-- (The profiles and the persons are read by name, not through CTEs: DuckDB materializes a CTE
-- read more than once whole, every column of every profile, where each read by name takes only
-- the columns and rows it needs: the batch's time reads one column.)
with built as (
    select coalesce(max(refreshed_at), cast('1970-01-01' as {{ dbt.type_timestamp() }}))
        as refreshed_at
    from {{ ref('customer_profiles') }}
),

stream as (
    select events.*
    from {{ ref('stg_web__stream_events') }} as events
    cross join built
    where events.received_at > built.refreshed_at
),

device_owners as (
    -- Identify calls in the stream link new devices to known users (and vice versa).
    select
        stream.anonymous_id,
        arg_max(coalesce(by_user.person_id, 'live_' || {{ dbt.hash('stream.user_id') }}),
                stream.occurred_at) as person_id
    from stream
    left join {{ ref('int_identity__persons_assigned') }} as by_user
        on by_user.identifier_type = 'user_id' and by_user.identifier_value = stream.user_id
    where stream.message_type = 'identify' and stream.user_id is not null
        and stream.anonymous_id is not null
        and not {{ is_junk_identifier('stream.anonymous_id') }}
    group by stream.anonymous_id
),

attributed as (
    select
        stream.*,
        coalesce(
            by_user.person_id,
            by_device.person_id,
            device_owners.person_id,
            'live_' || {{ dbt.hash('coalesce(stream.user_id, stream.anonymous_id)') }}
        ) as person_id
    from stream
    {{ web_event_person_joins('stream', ref('int_identity__persons_assigned')) }}
    left join device_owners on device_owners.anonymous_id = stream.anonymous_id
),

live as (
    select
        person_id,
        max(occurred_at) as last_seen_at,
        count(*) filter (where message_type = 'page'
            and cast(occurred_at as date) = current_date) as page_views_today,
        max(occurred_at) filter (where event_name in ('Product Added', 'Checkout Started'))
            as last_cart_event_at,
        max(occurred_at) filter (where event_name = 'Order Completed') as last_order_at,
        {{ list_agg('product_id', 'occurred_at desc') }}
            filter (where event_name = 'Product Added' and product_id is not null)
            as added_products,
        max(email) as identified_email,
        count(*) as events_since_batch
    from attributed
    group by person_id
),

final as (
    select
        coalesce(profiles.person_id, live.person_id) as person_id,
        coalesce(profiles.email, live.identified_email) as email,
        profiles.person_id is null as provisional,
        profiles.demographics,
        profiles.behavior,
        profiles.transactions,
        profiles.preferences,
        {{ make_struct([
            ('last_seen_at', 'greatest(profiles.behavior.last_seen_at, live.last_seen_at)'),
            ('page_views_today', 'coalesce(live.page_views_today, 0)'),
            ('last_cart_event_at',
                'greatest(profiles.behavior.last_cart_event_at, live.last_cart_event_at)'),
            ('last_order_at', 'greatest(profiles.transactions.last_order_at, live.last_order_at)'),
            ('open_cart_product_ids', 'coalesce(live.added_products, '
                'profiles.transactions.open_cart.product_ids)'),
            ('events_since_batch', 'coalesce(live.events_since_batch, 0)'),
        ]) }} as live,
        built.refreshed_at as batch_refreshed_at
    from {{ ref('customer_profiles') }} as profiles
    full outer join live using (person_id)
    cross join built
)

select * from final
