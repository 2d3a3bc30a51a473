{{
    config(
        materialized='incremental',
        unique_key='order_id',
        incremental_strategy='merge',
        merge_clauses=merge_removing('DBT_INTERNAL_SOURCE.written_at is null'),
        on_schema_change='sync_all_columns'
    )
}}

-- One row per order, from the shop database, plus web orders the shop lacks.
-- Incremental by person (macros/changed_people.sql): a run combines again the orders of the
-- people with a profile event or a shop order or customer written since its last, and of those
-- whose identifiers changed. A web order goes to the first completed event of its order id,
-- whoever's that is, so the run reads every completed event of the order ids theirs name. An
-- order of theirs that is no longer theirs (or no longer an order) leaves an empty row, which
-- deletes its row.
{%- set inputs = ['web', 'shop'] %}
{%- if not execute %}{% do affected_people(inputs) %}{% endif %}
{%- set persons = person_identifiers() %}
with
{%- if is_incremental() %}
{{ affected_people(inputs) }}
{%- endif %}

shop_orders as (
    select
        orders.order_id,
        persons.person_id,
        orders.status,
        orders.total,
        orders.created_at as ordered_at,
        'shop' as source
    from {{ ref('stg_shop__orders') }} as orders
    inner join {{ persons }} as persons
        on persons.identifier_type = 'customer_id'
        and persons.identifier_value = orders.customer_id
),

completed as (
    select *
    from {{ ref('int_web__profile_events_resolved') }}
    where event_name = 'Order Completed' and order_id is not null
    {%- if is_incremental() %}
        and order_id in (
            select order_id
            from ({{ web_events_of(ref('int_web__profile_events'), persons) }})
            where event_name = 'Order Completed'
        )
    {%- endif %}
),

web_orders as (
    select
        order_id,
        person_id,
        'completed' as status,
        revenue as total,
        occurred_at as ordered_at,
        'web' as source
    from completed
    qualify row_number() over (partition by order_id order by occurred_at, event_id) = 1
),

-- The shop's orders of some person: a web order of the same id is the shop's.
shop_order_ids as (
    {%- if is_incremental() %}
    select orders.order_id
    from {{ ref('stg_shop__orders') }} as orders
    inner join {{ ref('int_identity__persons_assigned') }} as persons
        on persons.identifier_type = 'customer_id'
        and persons.identifier_value = orders.customer_id
    where orders.order_id in (select order_id from web_orders)
    {%- else %}
    select order_id from shop_orders
    {%- endif %}
),

unioned as (
    select * from shop_orders
    union all
    select web_orders.*
    from web_orders
    left join shop_order_ids using (order_id)
    where shop_order_ids.order_id is null
),

final as (
    select *
    from unioned
    where status not in ('cancelled', 'refunded')
)

select *, {{ written_at() }} as written_at from final
{%- if is_incremental() %}

union all

select held.order_id, null, null, null, null, null, null
from {{ this }} as held
where held.person_id in (select person_id from affected)
    and not exists (select 1 from final where final.order_id = held.order_id)
{%- endif %}
