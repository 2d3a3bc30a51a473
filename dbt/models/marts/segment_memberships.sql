-- One row per segment and member: emailable (subscribed) people who match the segment's rule.
with profiles as (
    select * from {{ ref('customer_profiles') }}
    where preferences.email_status = 'subscribed' and email is not null
),

memberships as (
    {% for segment in var('segments') %}
    select
        '{{ segment.id }}' as segment_id,
        person_id,
        email,
        as_of
    from profiles
    where {{ segment.rule }}
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
