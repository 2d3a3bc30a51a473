-- One row per person with orders: counts, value, first and last order.
with orders as (
    select * from {{ ref('int_person__orders_combined') }}
),

per_person as (
    select
        person_id,
        count(*) as order_count,
        sum(total) as lifetime_value,
        avg(total) as average_order_value,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at
    from orders
    group by person_id
)

select * from per_person
