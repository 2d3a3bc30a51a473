-- Segment Spec messages, one JSON document per line of `lines(_raw, _source_file, _line)`.
-- Each document is parsed once: every field comes from one multi-path extraction. Invalid JSON
-- yields nulls (json_ok = false); json_type tells wrong types from missing fields.
with parsed as (
    select
        _raw,
        _source_file,
        _line,
        coalesce(
            case when json_valid(_raw) then json_type(_raw::json) = 'OBJECT' end, false
        ) as json_ok
    from lines
),

doc as (
    select
        *,
        case when json_ok then json_extract_string(_raw, [
            '$.messageId', '$.type', '$.anonymousId', '$.userId', '$.event', '$.name',
            '$.previousId', '$.groupId', '$.timestamp', '$.sentAt', '$.receivedAt',
            '$.traits.email'
        ]) end as s,
        case when json_ok then json_type(_raw, [
            '$.messageId', '$.timestamp', '$.properties', '$.traits', '$.context'
        ]) end as t,
        case when json_ok then json_extract(_raw, ['$.traits', '$.properties', '$.context'])
        end as o,
        case when json_ok then json_keys(_raw) end as _keys
    from parsed
)

select
    _raw,
    _source_file,
    _line,
    json_ok,
    s[1] as message_id,
    s[2] as type,
    s[3] as anonymous_id,
    s[4] as user_id,
    s[5] as event,
    s[6] as name,
    s[7] as previous_id,
    s[8] as group_id,
    t[1] as message_id_type,
    t[2] as timestamp_type,
    t[3] as properties_type,
    t[4] as traits_type,
    t[5] as context_type,
    s[9] as timestamp_text,
    try_cast(s[9] as timestamptz) as timestamp,
    try_cast(s[10] as timestamptz) as sent_at,
    try_cast(s[11] as timestamptz) as received_at,
    s[12] as traits_email,
    o[1]::varchar as traits,
    o[2]::varchar as properties,
    o[3]::varchar as context,
    _keys,
    -- Every top-level field without a column of its own is kept, not dropped.
    case when len(list_filter(_keys, k -> k not in (
        'type', 'messageId', 'anonymousId', 'userId', 'event', 'name', 'previousId',
        'groupId', 'timestamp', 'sentAt', 'receivedAt', 'traits', 'properties', 'context'
    ))) > 0 then json_merge_patch(_raw::json, '{"type": null, "messageId": null,
        "anonymousId": null, "userId": null, "event": null, "name": null, "previousId": null,
        "groupId": null, "timestamp": null, "sentAt": null, "receivedAt": null,
        "traits": null, "properties": null, "context": null}')::varchar end as extra
from doc
