{{ config(**person_incremental_config()) }}

-- One row per person with a cart still open: what they added since their last order.
-- Incremental by person (macros/changed_people.sql): a run prices again the carts of the people
-- with a profile event or a shop order or customer written since its last, and of those whose
-- identifiers changed; a changed product catalog (products_fingerprint: its ids and prices)
-- prices everyone's again.
{%- set inputs = ['web', 'shop'] %}
{%- set catalog %}(
    select bit_xor(hash(product_id, price)) from {{ ref('stg_shop__products') }}
){%- endset %}
{%- set catalog_changed %}
    select distinct person_id
    from {{ ref('int_identity__persons_assigned') }}
    where {{ catalog }} is distinct from (select any_value(products_fingerprint) from {{ this }})
{%- endset %}
{%- if not execute %}{% do affected_people(inputs) %}{% endif %}
{%- set persons = person_identifiers() %}
with
{%- if is_incremental() %}
{%- set since = changed_since(['written_at', 'products_fingerprint']) %}
{{ affected_people(inputs, since, catalog_changed if holds_column('products_fingerprint')) }}
{%- endif %}

events as (
    {%- if is_incremental() %}
    {{ web_events_of(ref('int_web__profile_events'), persons) }}
    {%- else %}
    select * from {{ ref('int_web__profile_events_resolved') }}
    {%- endif %}
),

last_orders as (
    select person_id, max(ordered_at) as last_order_at
    from {{ ref('int_person__orders_combined') }}
    {%- if is_incremental() %}
    where person_id in (select person_id from affected)
    {%- endif %}
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

carts as (
    select
        person_id,
        {{ list_agg('product_id', 'occurred_at desc, product_id') }} as product_ids,
        sum(price) as cart_value,
        max(occurred_at) as last_added_at,
        {{ catalog }} as products_fingerprint
    from priced
    group by person_id
)

{{ person_rows('carts') }}
