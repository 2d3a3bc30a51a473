-- One row per person with orders: counts, value, recency, RFM scores and the open cart.
with orders as (
    select * from {{ ref('int_person__orders_combined') }}
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
),

-- person_id breaks ties, so people with equal values fall into the same quintiles every run.
scored as (
    select
        *,
        percent_rank() over (order by lifetime_value) as lifetime_value_percentile,
        ntile(5) over (order by last_order_at, person_id) as recency_score,
        ntile(5) over (order by order_count, lifetime_value, person_id) as frequency_score,
        ntile(5) over (order by lifetime_value, person_id) as monetary_score
    from per_person
),

final as (
    select
        *,
        cast(recency_score as {{ dbt.type_string() }})
            || cast(frequency_score as {{ dbt.type_string() }})
            || cast(monetary_score as {{ dbt.type_string() }}) as rfm_cell
    from scored
)

select * from final
