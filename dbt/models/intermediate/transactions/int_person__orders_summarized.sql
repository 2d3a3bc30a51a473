{{ config(**person_incremental_config()) }}

-- One row per person with orders: counts, value, first and last order.
-- Incremental by person (macros/changed_people.sql), as int_person__orders_combined.
{%- set inputs = ['web', 'shop'] %}
{%- if not execute %}{% do affected_people(inputs) %}{% endif %}
with
{%- if is_incremental() %}
{{ affected_people(inputs) }}
{%- endif %}

orders as (
    select * from {{ ref('int_person__orders_combined') }}
    {%- if is_incremental() %}
    where person_id in (select person_id from affected)
    {%- endif %}
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

{{ person_rows('per_person') }}
