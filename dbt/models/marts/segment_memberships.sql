-- One row per segment and member: emailable (subscribed) people who match the segment's rule.
-- (Each segment reads the profiles by name: through one CTE read once per segment, DuckDB
-- materialized every emailable profile whole, every column, not just those a segment reads.)
with memberships as (
    {% for segment in var('segments') %}
    select
        '{{ segment.id }}' as segment_id,
        person_id,
        email,
        as_of
    from {{ ref('customer_profiles') }} as profiles
    where preferences.email_status = 'subscribed' and email is not null
        and ({{ segment.rule }})
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        segment_id || ':' || person_id as membership_id,
        segment_id,
        person_id,
        email,
        as_of
    from memberships
)

select * from final
