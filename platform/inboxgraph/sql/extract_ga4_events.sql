-- GA4 BigQuery export rows, one JSON document per line of `lines(_raw, _line)`; one output row
-- per input row, in input order (the caller puts the raw columns beside it). INT64 columns may
-- be JSON numbers or strings (BigQuery's JSON export writes them as strings).
-- `event_params` and `user_properties` are arrays of {key, value: {string_value, int_value,
-- float_value, double_value}}: `params` flattens the event's into one JSON object (key -> the
-- value that is set, as text) for the warehouse, and `params_ok` is false when the array is
-- not of that shape (or names a key twice).
with parsed as (
    select
        _raw,
        _line,
        case when starts_with(ltrim(_raw), '{') and json_valid(_raw) then _raw::json end as j
    from lines
),

doc as (
    select
        _line,
        j,
        j is not null as json_ok,
        case when j is not null then json_keys(j) end as top_keys,
        case when json_type(j, '$.event_params') = 'ARRAY'
            then from_json(j -> '$.event_params', '["JSON"]') end as param_list
    from parsed
),

params as (
    select
        *,
        list_transform(param_list, lambda p: json_extract_string(p, '$.key')) as param_keys,
        coalesce(len(list_filter(param_list, lambda p:
            coalesce(json_type(p), '') <> 'OBJECT'
            or coalesce(json_type(p, '$.key'), '') <> 'VARCHAR'
            or coalesce(json_type(p, '$.value'), 'NULL') not in ('OBJECT', 'NULL')
        )), 0) = 0 as params_shaped
    from doc
)

select
    _line as _checked_line,
    json_ok,
    j ->> '$.event_name' as event_name,
    j ->> '$.event_date' as event_date,
    json_type(j, '$.event_timestamp') as event_timestamp_type,
    try_cast(j ->> '$.event_timestamp' as bigint) as event_timestamp,
    j ->> '$.user_id' as user_id,
    j ->> '$.user_pseudo_id' as user_pseudo_id,
    j ->> '$.stream_id' as stream_id,
    j ->> '$.platform' as platform,
    coalesce(json_type(j, '$.event_params'), 'NULL') in ('ARRAY', 'NULL')
        and params_shaped
        and coalesce(len(list_distinct(param_keys)) = len(param_keys), true) as params_ok,
    coalesce(json_type(j, '$.items'), 'NULL') in ('ARRAY', 'NULL')
        and coalesce(json_type(j, '$.ecommerce'), 'NULL') in ('OBJECT', 'NULL')
        and coalesce(json_type(j, '$.user_properties'), 'NULL') in ('ARRAY', 'NULL')
        and coalesce(json_type(j, '$.device'), 'NULL') in ('OBJECT', 'NULL')
        and coalesce(json_type(j, '$.geo'), 'NULL') in ('OBJECT', 'NULL') as shapes_ok,
    (j -> '$.event_params')::varchar as event_params,
    -- The event's identity (transforms/ga4_events.py): what it is, whose, when and with what.
    case when j is not null then md5(concat_ws(chr(31),
        coalesce(j ->> '$.stream_id', ''),
        coalesce(j ->> '$.user_pseudo_id', ''),
        coalesce(j ->> '$.user_id', ''),
        coalesce(j ->> '$.event_timestamp', ''),
        coalesce(j ->> '$.event_name', ''),
        coalesce((j -> '$.event_params')::varchar, '')
    )) end as event_id,
    case when params_shaped and len(list_distinct(param_keys)) = len(param_keys)
        then to_json(map_from_entries(list_transform(param_list, lambda p: {
            'k': json_extract_string(p, '$.key'),
            'v': coalesce(
                json_extract_string(p, '$.value.string_value'),
                json_extract_string(p, '$.value.int_value'),
                json_extract_string(p, '$.value.double_value'),
                json_extract_string(p, '$.value.float_value')
            )
        })))::varchar end as params,
    (j -> '$.user_properties')::varchar as user_properties,
    (j -> '$.device')::varchar as device,
    (j -> '$.geo')::varchar as geo,
    (j -> '$.traffic_source')::varchar as traffic_source,
    (j -> '$.ecommerce')::varchar as ecommerce,
    (j -> '$.items')::varchar as items,
    -- The fields the drift check counts: the top-level ones and each event parameter's key.
    list_concat(top_keys, list_transform(param_keys, lambda k: 'event_params.' || k)) as _keys,
    -- Every top-level field without a column of its own is kept, not dropped.
    case when len(list_filter(top_keys, lambda k: k not in (
        'event_name', 'event_date', 'event_timestamp', 'user_id', 'user_pseudo_id', 'stream_id',
        'platform', 'event_params', 'user_properties', 'device', 'geo', 'traffic_source',
        'ecommerce', 'items'
    ))) > 0 then json_merge_patch(j, '{"event_name": null, "event_date": null,
        "event_timestamp": null, "user_id": null, "user_pseudo_id": null, "stream_id": null,
        "platform": null, "event_params": null, "user_properties": null, "device": null,
        "geo": null, "traffic_source": null, "ecommerce": null, "items": null}')::varchar
    end as extra
from params
