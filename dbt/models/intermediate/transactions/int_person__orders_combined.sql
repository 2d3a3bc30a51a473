-- One row per order, from the shop database, plus web orders the shop lacks.
with persons as (
    select * from {{ ref('int_identity__persons_assigned') }}
),

shop_orders as (
    select
        orders.order_id,
        persons.person_id,
        orders.status,
        orders.total,
        orders.created_at as ordered_at,
        'shop' as source
    from {{ ref('stg_shop__orders') }} as orders
    inner join persons
        on persons.identifier_type = 'customer_id'
        and persons.identifier_value = orders.customer_id
),

web_orders as (
    select
        order_id,
        person_id,
        'completed' as status,
        revenue as total,
        occurred_at as ordered_at,
        'web' as source
    from {{ ref('int_web__profile_events_resolved') }}
    where event_name = 'Order Completed' and order_id is not null
    qualify row_number() over (partition by order_id order by occurred_at, event_id) = 1
),

unioned as (
    select * from shop_orders
    union all
    select web_orders.*
    from web_orders
    left join shop_orders using (order_id)
    where shop_orders.order_id is null
),

final as (
    select *
    from unioned
    where status not in ('cancelled', 'refunded')
)

select * from final
