-- GA4 events in the shape of Segment's (macro web_events_renamed), one row per landed event.
-- The recommended e-commerce events become their Segment Spec counterparts, so carts,
-- checkouts and orders mean the same whichever tool saw them; `page_view` is a page call.
-- `user_pseudo_id` is the device (an anonymous id) and `user_id` the site's own user id, the
-- one a Segment identify carries. Event ids are prefixed, so no two sources' ids collide.
with source as (
    select * from {{ source('lake', 'ga4_events') }}
),

renamed as (
    select
        'ga4:' || event_id as event_id,
        case when event_name = 'page_view' then 'page' else 'track' end as message_type,
        user_pseudo_id as anonymous_id,
        user_id,
        case event_name
            when 'page_view' then null
            when 'view_item' then 'Product Viewed'
            when 'add_to_cart' then 'Product Added'
            when 'remove_from_cart' then 'Product Removed'
            when 'begin_checkout' then 'Checkout Started'
            when 'purchase' then 'Order Completed'
            when 'refund' then 'Order Refunded'
            when 'login' then 'Signed In'
            when 'sign_up' then 'Signed Up'
            else event_name
        end as event_name,
        {{ json_text('params', '$.page_title') }} as page_name,
        cast(null as varchar) as previous_id,
        cast(null as varchar) as group_id,
        cast(null as varchar) as email,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        cast(null as {{ dbt.type_timestamp() }}) as sent_at,
        cast(received_date as date) as received_date,
        cast(null as varchar) as traits,
        json_object(
            'product_id', {{ json_text('items', '$[0].item_id') }},
            'category', {{ json_text('items', '$[0].item_category') }},
            'order_id', nullif(coalesce(
                {{ json_text('ecommerce', '$.transaction_id') }},
                {{ json_text('params', '$.transaction_id') }}
            ), '(not set)'),
            'revenue', coalesce(
                {{ json_text('ecommerce', '$.purchase_revenue') }},
                {{ json_text('params', '$.value') }}
            ),
            'path', {{ url_path(json_text('params', '$.page_location')) }},
            'url', {{ json_text('params', '$.page_location') }},
            'title', {{ json_text('params', '$.page_title') }}
        )::varchar as properties,
        json_object('device', device::json, 'geo', geo::json)::varchar as context,
        _source_file as source_file,
        _line as source_line,
        'ga4_events' as source
    from source
)

select * from renamed
