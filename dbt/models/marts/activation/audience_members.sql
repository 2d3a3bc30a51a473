-- One row per segment and member, with the personalization fields email templates need.
-- Only subscribed people, as in segment_memberships; exports read nothing else.
with memberships as (
    select * from {{ ref('segment_memberships') }}
),

-- The lifetime value tier ranks each person among everyone with orders, as of the run.
profiles as (
    select * from ({{ profiles_as_of(ref('customer_profiles'), as_of()) }})
    where preferences.email_status = 'subscribed'
),

final as (
    select
        memberships.membership_id,
        memberships.segment_id,
        memberships.person_id,
        memberships.email,
        profiles.demographics.first_name as first_name,
        profiles.demographics.last_name as last_name,
        profiles.behavior.product_interests[1] as top_category,
        coalesce(
            profiles.transactions.open_cart.product_ids,
            profiles.behavior.recently_viewed_products
        )[1:3] as featured_products,
        case
            when profiles.transactions.open_cart.product_ids is not null then 'abandoned'
            when profiles.behavior.recently_viewed_products is not null then 'viewed'
        end as featured_products_reason,
        profiles.transactions.lifetime_value_tier as lifetime_value_tier,
        memberships.as_of
    from memberships
    inner join profiles using (person_id)
)

select * from final
