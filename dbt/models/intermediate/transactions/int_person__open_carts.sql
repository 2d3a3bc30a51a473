-- One row per person with a cart still open: what they added since their last order.
with events as (
    select * from {{ ref('int_web__profile_events_resolved') }}
),

last_orders as (
    select person_id, max(ordered_at) as last_order_at
    from {{ ref('int_person__orders_combined') }}
    group by person_id
),

added as (
    select events.person_id, events.product_id, events.occurred_at
    from events
    left join last_orders using (person_id)
    where events.event_name = 'Product Added'
        and events.product_id is not null
        and (last_orders.last_order_at is null or events.occurred_at > last_orders.last_order_at)
),

priced as (
    select added.*, products.price
    from added
    left join {{ ref('stg_shop__products') }} as products using (product_id)
),

final as (
    select
        person_id,
        {{ list_agg('product_id', 'occurred_at desc, product_id') }} as product_ids,
        sum(price) as cart_value,
        max(occurred_at) as last_added_at
    from priced
    group by person_id
)

select * from final
