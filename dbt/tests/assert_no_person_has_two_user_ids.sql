-- Identity resolution never merges two people with different user ids.
select person_id
from {{ ref('identity_map') }}
where identifier_type = 'user_id'
group by person_id
having count(*) > 1
