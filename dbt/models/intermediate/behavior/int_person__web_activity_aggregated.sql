-- One row per person: page views, sessions, recency and product interests from web events.
with events as (
    select * from {{ ref('int_web__events_attributed') }}
),

products as (
    select * from {{ ref('stg_shop__products') }}
),

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
        activity.*,
        sessions.session_count,
        top_categories.categories[1:3] as top_categories,
        recently_viewed.product_ids[1:5] as recently_viewed_products
    from activity
    left join sessions using (person_id)
    left join top_categories using (person_id)
    left join recently_viewed using (person_id)
)

select * from final
