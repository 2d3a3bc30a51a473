-- Mixpanel Raw Event Export lines, one JSON document per line of `lines(_raw, _line)`: `event`
-- and `properties` (with `time`, epoch seconds, and the reserved `distinct_id`, `$device_id`,
-- `$user_id`, `$insert_id`, `$current_url`). One output row per input row, in input order.
with parsed as (
    select
        _line,
        case when starts_with(ltrim(_raw), '{') and json_valid(_raw) then _raw::json end as j
    from lines
),

doc as (
    select
        _line,
        j,
        j is not null as json_ok,
        json_type(j, '$.properties') as properties_type,
        j -> '$.properties' as p
    from parsed
)

select
    _line as _checked_line,
    json_ok,
    j ->> '$.event' as event,
    properties_type,
    json_type(p, '$.time') as time_type,
    try_cast(p ->> '$.time' as double) as time_s,
    p ->> '$.distinct_id' as distinct_id,
    p ->> '$."$device_id"' as device_id,
    p ->> '$."$user_id"' as user_id,
    p ->> '$."$insert_id"' as insert_id,
    p ->> '$."$current_url"' as current_url,
    coalesce(p ->> '$."$email"', p ->> '$.email') as email_raw,
    try_cast(p ->> '$.mp_processing_time_ms' as bigint) as processing_time_ms,
    case when properties_type = 'OBJECT' then p::varchar end as properties,
    -- The fields the drift check counts: the top-level ones and each property's name.
    case when j is not null then list_concat(
        json_keys(j),
        case when properties_type = 'OBJECT'
            then list_transform(json_keys(p), lambda k: 'properties.' || k) end
    ) end as _keys,
    -- Every top-level field besides `event` and `properties` is kept, not dropped.
    case when len(list_filter(json_keys(j), lambda k: k not in ('event', 'properties'))) > 0
        then json_merge_patch(j, '{"event": null, "properties": null}')::varchar end as extra
from doc
