-- Mixpanel events in the shape of Segment's (macro web_events_renamed), one row per landed
-- event. `$mp_web_page_view` is a page call; a shop's e-commerce events, under Segment's names
-- or the usual Mixpanel ones (macro mixpanel_event_name), become their Segment Spec
-- counterparts. `$device_id` is the device (an anonymous id) and `$user_id` the site's own
-- user id; an address the event carries (`$email` or `email`, checked at landing) links to them. Event ids are prefixed, so no two sources' ids collide.
with source as (
    select * from {{ source('lake', 'mixpanel_events') }}
),

renamed as (
    select
        'mixpanel:' || insert_id as event_id,
        case when event = '$mp_web_page_view' then 'page' else 'track' end as message_type,
        device_id as anonymous_id,
        user_id,
        case when event = '$mp_web_page_view' then null
            else {{ mixpanel_event_name('event') }} end as event_name,
        {{ json_text('properties', '$.current_page_title') }} as page_name,
        cast(null as varchar) as previous_id,
        cast(null as varchar) as group_id,
        email,
        cast(occurred_at as {{ dbt.type_timestamp() }}) as occurred_at,
        cast(null as {{ dbt.type_timestamp() }}) as sent_at,
        cast(received_date as date) as received_date,
        cast(null as varchar) as traits,
        json_object(
            'product_id', coalesce(
                {{ json_text('properties', '$.product_id') }},
                {{ json_text('properties', '$.sku') }}
            ),
            'category', {{ json_text('properties', '$.category') }},
            'order_id', coalesce(
                {{ json_text('properties', '$.order_id') }},
                {{ json_text('properties', '$.transaction_id') }}
            ),
            'revenue', coalesce(
                {{ json_text('properties', '$.revenue') }},
                {{ json_text('properties', '$.total') }},
                {{ json_text('properties', '$.value') }}
            ),
            'path', {{ url_path('current_url') }},
            'url', current_url,
            'title', {{ json_text('properties', '$.current_page_title') }}
        )::varchar as properties,
        json_object(
            'browser', {{ json_text('properties', '$."$browser"') }},
            'os', {{ json_text('properties', '$."$os"') }},
            'city', {{ json_text('properties', '$."$city"') }},
            'country', {{ json_text('properties', '$.mp_country_code') }}
        )::varchar as context,
        _source_file as source_file,
        _line as source_line,
        'mixpanel_events' as source
    from source
)

select * from renamed
