"""The audit trail: every materialization of every asset and partition, in the warehouse."""

import time

import dagster as dg

from inboxgraph import audit
from inboxgraph.assets.activation import activation_assets
from inboxgraph.assets.warehouse import WAREHOUSE_POOL
from inboxgraph.resources.warehouse import WarehouseResource

AUDIT_KEY = dg.AssetKey(["marts", "audit_log"])
MART_KEYS = [
    dg.AssetKey(["marts", name])
    for name in (
        "customer_profiles",
        "identity_map",
        "identity_links",
        "segment_memberships",
        "segments",
        "audience_members",
    )
]


@dg.asset(
    key=AUDIT_KEY,
    group_name="audit",
    deps=[*MART_KEYS, *(key for a in activation_assets for key in a.keys)],
    kinds={"duckdb"},
    tags={"layer": "marts"},
    pool=WAREHOUSE_POOL,
)
def audit_log(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per materialization (and erasure): run, rows in/out/quarantined, duration."""
    started = time.monotonic()
    with warehouse.connect(read_only=False) as connection:
        added = audit.record_materializations(context.instance, connection, skip=[AUDIT_KEY])
        own = audit.event_row(
            "materialization",
            context.run.run_id,
            {"recorded": added},
            asset_key=AUDIT_KEY.to_user_string(),
            job_name=context.job_name,
            rows_out=added,
            duration_s=time.monotonic() - started,
        )
        own["audit_id"] = f"audit_log:{context.run.run_id}"
        audit.append(connection, [own])
        total = connection.execute("select count(*) from marts.audit_log").fetchone()[0]
    return dg.MaterializeResult(metadata={"dagster/row_count": total, "rows_added": added})
