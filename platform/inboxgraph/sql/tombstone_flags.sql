-- Rows of `keyed(_row, _h_<column>...)` carrying an erased identifier. Each _h_ column holds
-- 'type:value' (normalized); its SHA-256 is what `tombstones(identifier_hash)` records.
with keys as (
    unpivot keyed
    on columns(* exclude (_row))
    into name identifier value key
)

select _row, bool_or(sha256(key) in (select identifier_hash from tombstones)) as erased
from keys
group by _row
