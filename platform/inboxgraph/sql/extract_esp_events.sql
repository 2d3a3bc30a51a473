-- SendGrid Event Webhook objects, one JSON document per line of `lines(_raw, _source_file, _line)`.
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
    j ->> '$.sg_event_id' as sg_event_id,
    j ->> '$.sg_message_id' as sg_message_id,
    j ->> '$.email' as email_raw,
    j ->> '$.event' as event,
    json_type(j, '$.timestamp') as timestamp_type,
    try_cast(j ->> '$.timestamp' as bigint) as timestamp_epoch,
    j ->> '$.url' as url,
    j ->> '$.reason' as reason_text,
    j ->> '$.type' as bounce_type,
    j ->> '$.asm_group_id' as asm_group_id,
    (j -> '$.category')::varchar as category,
    json_keys(j) as _keys,
    -- Every field without a column of its own is kept, not dropped.
    nullif(json_merge_patch(j, '{"sg_event_id": null, "sg_message_id": null, "email": null,
        "event": null, "timestamp": null, "url": null, "reason": null, "type": null,
        "asm_group_id": null, "category": null}')::varchar, '{}') as extra
from doc
