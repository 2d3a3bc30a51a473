"""Marts -> activation: consent-aware audience exports and the suppression list for ESPs."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from inboxgraph.activation import FORMATS, export
from inboxgraph.assets.warehouse import WAREHOUSE_POOL
from inboxgraph.resources.exports import ExportsResource
from inboxgraph.resources.warehouse import WarehouseResource
from inboxgraph.storage import write_bytes_atomic

# Direct dependencies on the marts with blocking contracts, so a failed check stops exports.
GATES = [
    dg.AssetKey(["marts", name])
    for name in ("customer_profiles", "identity_map", "segment_memberships")
]
AUDIENCE = dg.AssetKey(["marts", "audience_members"])
ESP_NAMES = {
    "mailchimp": "Mailchimp audience import CSV",
    "klaviyo": "Klaviyo profile import CSV",
    "braze": "Braze users/track JSON batches",
}


class ExportConfig(dg.Config):
    """``full``: export every current member as added, not just the change since last time."""

    full: bool = False


def _subscribed_members(warehouse: WarehouseResource) -> pl.DataFrame:
    with warehouse.connect(read_only=True) as connection:
        return connection.sql(
            "select a.* from marts.audience_members a join marts.customer_profiles p "
            "using (person_id) where p.preferences.email_status = 'subscribed' "
            "order by segment_id, person_id"
        ).pl()


def _export(
    esp: str,
    members: pl.DataFrame,
    exports: ExportsResource,
    full: bool,
    context: dg.AssetExecutionContext,
) -> dg.MaterializeResult:
    export_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    counts = export(exports.store(), esp, members, export_id, full=full)
    files = counts.pop("_files")["written"]
    added = sum(c["added"] for c in counts.values())
    removed = sum(c["removed"] for c in counts.values())
    context.log.info(f"{esp}: {added} added, {removed} removed, {files} files")
    return dg.MaterializeResult(
        asset_key=dg.AssetKey(["activation", f"{esp}_export"]),
        metadata={
            "dagster/row_count": members.height,
            "added": added,
            "removed": removed,
            "files_written": files,
            "per_segment": dg.MetadataValue.json(counts),
            "export_id": export_id if files else "no change",
            "full": full,
        },
    )


def _suppression(
    warehouse: WarehouseResource, exports: ExportsResource, context: dg.AssetExecutionContext
) -> dg.MaterializeResult:
    with warehouse.connect(read_only=True) as connection:
        rows = connection.sql(
            "select email, preferences.email_status as reason, "
            "preferences.consent_updated_at as since from marts.customer_profiles "
            "where email is not null and preferences.email_status in "
            "('unsubscribed', 'bounced', 'complained') order by email"
        ).pl()
    target = exports.root / "suppression" / "suppressions.csv"
    write_bytes_atomic(target, rows.write_csv().encode())
    reasons = dict(rows.group_by("reason").len().iter_rows()) if rows.height else {}
    context.log.info(f"suppression list: {rows.height} addresses")
    return dg.MaterializeResult(
        asset_key=SUPPRESSION,
        metadata={
            "dagster/row_count": rows.height,
            "reasons": reasons,
            "path": dg.MetadataValue.path(str(target)),
        },
    )


SUPPRESSION = dg.AssetKey(["activation", "suppression_list"])
EXPORT_SPECS = [
    dg.AssetSpec(
        ["activation", f"{esp}_export"],
        group_name="activation",
        deps=[AUDIENCE, *GATES],
        kinds={"csv" if esp != "braze" else "json"},
        tags={"layer": "activation"},
        description=f"{ESP_NAMES[esp]}: per segment, the people added and removed since the "
        "last export (subscribed people only).",
    )
    for esp in FORMATS
] + [
    dg.AssetSpec(
        SUPPRESSION,
        group_name="activation",
        deps=GATES,
        kinds={"csv"},
        tags={"layer": "activation"},
        description="Addresses ESPs must not mail (unsubscribed, bounced, complained), "
        "one row per address.",
    )
]


@dg.multi_asset(name="activation_exports", specs=EXPORT_SPECS, can_subset=True, pool=WAREHOUSE_POOL)
def activation_exports(
    context: dg.AssetExecutionContext,
    config: ExportConfig,
    warehouse: WarehouseResource,
    exports: ExportsResource,
) -> Iterator[dg.MaterializeResult]:
    """Consent-aware audience exports for each ESP, and the suppression list."""
    selected = context.selected_asset_keys
    esps = [esp for esp in FORMATS if dg.AssetKey(["activation", f"{esp}_export"]) in selected]
    if esps:
        members = _subscribed_members(warehouse)
        for esp in esps:
            yield _export(esp, members, exports, config.full, context)
    if SUPPRESSION in selected:
        yield _suppression(warehouse, exports, context)


activation_assets = [activation_exports]
EXPORT_KEYS = [dg.AssetKey(["activation", f"{esp}_export"]) for esp in FORMATS]
