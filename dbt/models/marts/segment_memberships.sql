-- One row per segment and member: emailable (subscribed) people who match the segment's rule,
-- evaluated over the profiles as of the run (macro profiles_as_of). Every segment's rule is
-- evaluated in one pass over the profiles: a segment per scan made DuckDB read (or materialize)
-- every profile once per segment.
with profiles as (
    {{ profiles_as_of(ref('customer_profiles'), as_of()) }}
),

matched as (
    select
        person_id,
        email,
        as_of,
        [
            {%- for segment in var('segments') %}
            case when ({{ segment.rule }}) then '{{ segment.id }}' end{{ ',' if not loop.last }}
            {%- endfor %}
        ] as segment_ids
    from profiles
    where preferences.email_status = 'subscribed' and email is not null
),

memberships as (
    select unnest(list_filter(segment_ids, id -> id is not null)) as segment_id, person_id, email, as_of
    from matched
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
