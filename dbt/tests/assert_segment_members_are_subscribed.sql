-- Nobody but a subscribed person may be in a segment (and so in an email list).
select memberships.membership_id
from {{ ref('segment_memberships') }} as memberships
inner join {{ ref('customer_profiles') }} as profiles using (person_id)
where profiles.preferences.email_status != 'subscribed'
