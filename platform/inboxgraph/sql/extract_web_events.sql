-- Segment Spec messages, one JSON document per line of `lines(_raw, _source_file, _line)`.
-- Invalid JSON yields nulls (json_ok = false); json_type tells wrong types from missing ones.
with parsed as (
    select
        _raw,
        _source_file,
        _line,
        coalesce(case when json_valid(_raw) then json_type(_raw::json) = 'OBJECT' end, false) as json_ok
    from lines
),
doc as (
    select *, case when json_ok then _raw::json end as j from parsed
)
select
    _raw,
    _source_file,
    _line,
    json_ok,
    j ->> '$.messageId' as message_id,
    j ->> '$.type' as type,
    j ->> '$.anonymousId' as anonymous_id,
    j ->> '$.userId' as user_id,
    j ->> '$.event' as event,
    j ->> '$.name' as name,
    j ->> '$.previousId' as previous_id,
    j ->> '$.groupId' as group_id,
    json_type(j, '$.messageId') as message_id_type,
    json_type(j, '$.timestamp') as timestamp_type,
    json_type(j, '$.properties') as properties_type,
    json_type(j, '$.traits') as traits_type,
    json_type(j, '$.context') as context_type,
    j ->> '$.timestamp' as timestamp_text,
    try_cast(j ->> '$.timestamp' as timestamptz) as timestamp,
    try_cast(j ->> '$.sentAt' as timestamptz) as sent_at,
    try_cast(j ->> '$.receivedAt' as timestamptz) as received_at,
    j ->> '$.traits.email' as traits_email,
    (j -> '$.traits')::varchar as traits,
    (j -> '$.properties')::varchar as properties,
    (j -> '$.context')::varchar as context,
    json_keys(j) as _keys,
    -- Every top-level field without a column of its own is kept, not dropped.
    nullif(json_merge_patch(j, '{"type": null, "messageId": null, "anonymousId": null,
        "userId": null, "event": null, "name": null, "previousId": null, "groupId": null,
        "timestamp": null, "sentAt": null, "receivedAt": null, "traits": null,
        "properties": null, "context": null}')::varchar, '{}') as extra
from doc
