-- Placeholder values trackers send must never become identifiers.
select identifier_id
from {{ ref('identity_map') }}
where {{ is_junk_identifier('identifier_value') }}
