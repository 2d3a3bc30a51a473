-- Every address of a person, ranked: the CRM's first, then the shop's, identify's, the ESP's;
-- the most recently seen wins within a source. Rank 1 is the primary address.
with persons as (
    select person_id, identifier_value as email
    from {{ ref('int_identity__persons_assigned') }}
    where identifier_type = 'email'
),

seen as (
    select email, 1 as source_rank, updated_at as seen_at
    from {{ ref('stg_hubspot__contacts') }} where email is not null
    union all
    select email, 2, updated_at from {{ ref('stg_shop__customers') }} where email is not null
    union all
    select traits_email, 3, occurred_at from {{ ref('int_web__events_parsed') }}
    where traits_email is not null
    union all
    select email, 4, max(occurred_at) from {{ ref('stg_esp__events') }} group by email
),

best as (
    select email, min(source_rank) as source_rank, max(seen_at) as last_seen_at
    from seen
    group by email
),

final as (
    select
        persons.person_id,
        persons.email,
        row_number() over (
            partition by persons.person_id
            order by coalesce(best.source_rank, 9), best.last_seen_at desc nulls last, persons.email
        ) as email_rank
    from persons
    left join best using (email)
)

select * from final
