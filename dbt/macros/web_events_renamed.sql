{#- The web events of every web analytics source with staging's names and types, one row per
    landed event (before deduplication): Segment messages from the lake, and the GA4 and
    Mixpanel events their staging models map to the same shape (stg_ga4__events,
    stg_mixpanel__events). `source` names the lake table. stg_web__events deduplicates them;
    int_web__events_parsed reads them directly in incremental runs, so a received-date filter
    reaches the Parquet scans and only the partitions it names are read. -#}
{% macro web_events_renamed() -%}
    select
        message_id as event_id,
        type as message_type,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(user_id), '') as user_id,
        nullif(trim(event), '') as event_name,
        name as page_name,
        nullif(trim(previous_id), '') as previous_id,
        group_id,
        email,
        cast("timestamp" as {{ dbt.type_timestamp() }}) as occurred_at,
        cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at,
        cast(received_date as date) as received_date,
        traits,
        properties,
        context,
        _source_file as source_file,
        _line as source_line,
        'web_events' as source
    from {{ source('lake', 'web_events') }}

    union all

    select * from {{ ref('stg_ga4__events') }}

    union all

    select * from {{ ref('stg_mixpanel__events') }}
{%- endmacro %}

{#- The path of a page URL (`https://shop.example.com/products/p1?x=1` -> `/products/p1`). -#}
{% macro url_path(url) -%}
    nullif(regexp_extract({{ url }}, '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*([^?#]*)', 1), '')
{%- endmacro %}

{#- A Mixpanel event's name as Segment's Spec names it: Mixpanel has no fixed e-commerce names,
    so the common ones (any case) map to Segment's; any other name is kept. -#}
{% macro mixpanel_event_name(column) -%}
    case lower(trim({{ column }}))
        when 'product viewed' then 'Product Viewed'
        when 'view item' then 'Product Viewed'
        when 'viewed product' then 'Product Viewed'
        when 'product added' then 'Product Added'
        when 'add to cart' then 'Product Added'
        when 'added to cart' then 'Product Added'
        when 'product removed' then 'Product Removed'
        when 'remove from cart' then 'Product Removed'
        when 'checkout started' then 'Checkout Started'
        when 'begin checkout' then 'Checkout Started'
        when 'order completed' then 'Order Completed'
        when 'purchase' then 'Order Completed'
        when 'purchased' then 'Order Completed'
        else {{ column }}
    end
{%- endmacro %}
