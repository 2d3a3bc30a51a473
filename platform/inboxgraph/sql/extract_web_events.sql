-- Segment Spec messages, one JSON document per line of `lines(_raw, _line)`; one output row per
-- input row, in input order (the caller puts the raw columns beside it).
-- Each document is parsed once into a struct of its top-level fields (text, or JSON text where
-- the type is checked), plus once for its key list. Invalid JSON, or JSON that is not an
-- object, yields nulls (json_ok = false). Invalid documents are told apart by json_valid before
-- from_json sees them: an error inside try() makes DuckDB evaluate the whole vector again row
-- by row, and with a bad line in most vectors of 2,048 that doubled the parse.
with parsed as (
    select
        _raw,
        _line,
        case when starts_with(ltrim(_raw), '{') and json_valid(_raw) then try(from_json(_raw, '{
            "messageId": "JSON", "type": "VARCHAR", "anonymousId": "VARCHAR",
            "userId": "VARCHAR", "event": "VARCHAR", "name": "VARCHAR", "previousId": "VARCHAR",
            "groupId": "VARCHAR", "timestamp": "JSON", "sentAt": "VARCHAR",
            "receivedAt": "VARCHAR", "traits": "JSON", "properties": "JSON", "context": "JSON"
        }')) end as f
    from lines
),

doc as (
    select
        _raw,
        _line,
        f,
        f is not null as json_ok,
        case when f is not null then json_keys(_raw) end as _keys
    from parsed
)

select
    _line as _checked_line,
    json_ok,
    f.messageId ->> '$' as message_id,
    f.type as type,
    f.anonymousId as anonymous_id,
    f.userId as user_id,
    f.event as event,
    f.name as name,
    f.previousId as previous_id,
    f.groupId as group_id,
    -- A field present with the value null has the JSON type NULL (from_json gives SQL null).
    coalesce(json_type(f.messageId), if(list_contains(_keys, 'messageId'), 'NULL', null))
        as message_id_type,
    coalesce(json_type(f.timestamp), if(list_contains(_keys, 'timestamp'), 'NULL', null))
        as timestamp_type,
    coalesce(json_type(f.properties), if(list_contains(_keys, 'properties'), 'NULL', null))
        as properties_type,
    coalesce(json_type(f.traits), if(list_contains(_keys, 'traits'), 'NULL', null))
        as traits_type,
    coalesce(json_type(f.context), if(list_contains(_keys, 'context'), 'NULL', null))
        as context_type,
    try_cast(f.timestamp ->> '$' as timestamptz) as timestamp,
    try_cast(f.sentAt as timestamptz) as sent_at,
    try_cast(f.receivedAt as timestamptz) as received_at,
    f.traits ->> '$.email' as traits_email,
    f.traits::varchar as traits,
    f.properties::varchar as properties,
    f.context::varchar as context,
    _keys,
    -- Every top-level field without a column of its own is kept, not dropped.
    case when len(list_filter(_keys, k -> k not in (
        'type', 'messageId', 'anonymousId', 'userId', 'event', 'name', 'previousId',
        'groupId', 'timestamp', 'sentAt', 'receivedAt', 'traits', 'properties', 'context'
    ))) > 0 then json_merge_patch(_raw, '{"type": null, "messageId": null,
        "anonymousId": null, "userId": null, "event": null, "name": null, "previousId": null,
        "groupId": null, "timestamp": null, "sentAt": null, "receivedAt": null,
        "traits": null, "properties": null, "context": null}')::varchar end as extra
from doc
