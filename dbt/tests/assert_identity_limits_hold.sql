-- No person holds more identifiers of a type than var identity's limits allow, unless a `link`
-- override joined them on purpose.
{%- set limits = var('identity')['limits'] %}
with counts as (
    select person_id, identifier_type, count(*) as identifiers
    from {{ ref('identity_map') }}
    group by all
),

overridden as (
    select distinct people.person_id
    from {{ ref('identity_links') }} as links
    inner join {{ ref('identity_map') }} as people
        on people.identifier_type = links.left_type
        and people.identifier_value = links.left_value
    where links.rule = 'override_link'
)

select counts.*
from counts
where (
    {%- for type, limit in limits.items() %}
    (identifier_type = '{{ type }}' and identifiers > {{ limit }}){{ ' or' if not loop.last }}
    {%- endfor %}
)
    and person_id not in (select person_id from overridden)
