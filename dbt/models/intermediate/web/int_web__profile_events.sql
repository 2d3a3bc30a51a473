{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='merge',
        merge_clauses=merge_removing('not ' ~ is_profile_event('DBT_INTERNAL_SOURCE')),
        on_schema_change='sync_all_columns'
    )
}}

-- The web events the person-level models read one by one: identify calls (names, place,
-- consent), products added to a cart and completed orders, about 12% of all web events, with
-- the columns those models read. Demographics, consent, open carts and orders read this table
-- instead of scanning every parsed event for them.
--
-- Incremental: a run writes the parsed rows built after the newest built_at it holds (both
-- stamp the start of the run that wrote the row, and the parse comes first in a run), so the
-- events of a run that parsed without building this model are taken in by the next. A
-- re-parsed event replaces its row (merge on event_id); one that is no longer a profile event
-- (a rewritten file) deletes its row, and the other events the run brought along are left out
-- (macro merge_removing).
{%- set tracked = is_incremental() and holds_column('built_at') %}
with parsed as (
    select * from {{ ref('int_web__events_parsed') }}
    {%- if tracked %}
    {#- A table holding no row counts from the epoch: every parsed event is read. #}
    where built_at > {{ newest_held('built_at') }}
    {%- else %}
    where {{ is_profile_event() }}
    {%- endif %}
),

final as (
    select
        event_id,
        message_type,
        anonymous_id,
        user_id,
        event_name,
        occurred_at,
        received_date,
        traits_first_name,
        traits_last_name,
        traits_city,
        traits_country,
        traits_email_opt_in,
        traits_unsubscribed,
        product_id,
        order_id,
        revenue,
        {{ built_at() }} as built_at
    from parsed
)

select * from final
