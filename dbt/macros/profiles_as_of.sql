{#- The profiles of `relation` (marts.customer_profiles) with what depends on a moment,
    `as_of` (a SQL timestamp expression): days since the last cart event, email engagement and
    order, and the lifetime value percentile, tier and RFM scores, ranked among the people with
    orders. The profiles themselves hold none of it, so a run rewrites only the people whose
    inputs changed; these are worked out where they are read (the view
    marts.customer_profiles_as_of, the segments and the audiences). Each field sits in its
    struct beside the values it is computed from. person_id breaks ties, so people with equal
    values fall into the same quintiles every run. -#}
{% macro profiles_as_of(relation, as_of) -%}
    {%- set among_buyers = 'partition by transactions.order_count > 0 order by' -%}
    select
        ranked.* exclude (
            value_percentile, recency_score, frequency_score, monetary_score, is_buyer
        ) replace (
            struct_insert(
                ranked.behavior,
                days_since_last_cart_event := {{ days_between('ranked.behavior.last_cart_event_at', 'ranked.as_of') }},
                days_since_last_email_engagement := {{ days_between('ranked.behavior.last_email_engagement_at', 'ranked.as_of') }}
            ) as behavior,
            struct_insert(
                ranked.transactions,
                days_since_last_order := {{ days_between('ranked.transactions.last_order_at', 'ranked.as_of') }},
                lifetime_value_percentile := if(is_buyer, value_percentile, null),
                lifetime_value_tier := case
                    when not is_buyer then 'none'
                    when value_percentile >= 0.9 then 'top'
                    when value_percentile >= 0.5 then 'high'
                    else 'standard'
                end,
                recency_score := if(is_buyer, recency_score, null),
                frequency_score := if(is_buyer, frequency_score, null),
                monetary_score := if(is_buyer, monetary_score, null),
                rfm_cell := if(is_buyer, recency_score::varchar || frequency_score::varchar || monetary_score::varchar, null)
            ) as transactions
        )
    from (
        select
            profiles.*,
            {{ as_of }} as as_of,
            profiles.transactions.order_count > 0 as is_buyer,
            percent_rank() over ({{ among_buyers }} transactions.lifetime_value) as value_percentile,
            ntile(5) over ({{ among_buyers }} transactions.last_order_at, person_id) as recency_score,
            ntile(5) over ({{ among_buyers }} transactions.order_count, transactions.lifetime_value, person_id) as frequency_score,
            ntile(5) over ({{ among_buyers }} transactions.lifetime_value, person_id) as monetary_score
        from {{ relation }} as profiles
    ) as ranked
{%- endmacro %}
