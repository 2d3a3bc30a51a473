{{ config(materialized='view') }}

-- The live cart_abandoners segment, for triggered emails: a cart event in the last 7 days
-- (batch or stream), no order since, subscribed people only.
with profiles as (
    select * from {{ ref('customer_profiles_live') }}
),

final as (
    select
        'cart_abandoners_live' as segment_id,
        person_id,
        email,
        live.last_cart_event_at as last_cart_event_at,
        live.open_cart_product_ids as cart_product_ids,
        {{ dbt.current_timestamp() }} as evaluated_at
    from profiles
    where preferences.email_status = 'subscribed'
        and email is not null
        and live.last_cart_event_at >= {{ dbt.dateadd('day', -7, dbt.current_timestamp()) }}
        and (live.last_order_at is null or live.last_order_at < live.last_cart_event_at)
)

select * from final
