"""Marts -> activation: each ESP's audience delivered (through its API when its key is set, as
import files otherwise), and the suppression list."""

from datetime import UTC, datetime

import dagster as dg
import duckdb
import polars as pl

from inboxgraph.activation import FORMATS, export
from inboxgraph.assets.warehouse import WAREHOUSE_POOL
from inboxgraph.destinations import sync
from inboxgraph.resources.exports import ExportsResource
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.warehouse import WarehouseResource
from inboxgraph.storage import write_bytes_atomic
from inboxgraph.webhooks import WITHDRAWALS

# Direct dependencies on the marts with blocking contracts, so a failed check stops exports.
GATES = [
    dg.AssetKey(["marts", name])
    for name in ("customer_profiles", "identity_map", "segment_memberships")
]
AUDIENCE = dg.AssetKey(["marts", "audience_members"])
ESP_NAMES = {
    "mailchimp": ("Mailchimp", "INBOXGRAPH_MAILCHIMP_API_KEY", "audience import CSVs"),
    "klaviyo": ("Klaviyo", "INBOXGRAPH_KLAVIYO_API_KEY", "profile import CSVs"),
    "braze": ("Braze", "INBOXGRAPH_BRAZE_API_KEY", "users/track JSON batches"),
}
SUBSCRIBED_MEMBERS = (
    "select a.* from marts.audience_members a join marts.customer_profiles p "
    "using (person_id) where p.preferences.email_status = 'subscribed' "
    "order by segment_id, person_id"
)
SUPPRESSED = (
    "select email from marts.customer_profiles where email is not null and "
    "preferences.email_status in ('unsubscribed', 'bounced', 'complained')"
)
# Who withdrew since the profiles were built: an unsubscribe, complaint or bounce in the lake's
# ESP events (a webhook lands one within a minute) later than the last consent signal of a
# subscribed profile. Left out of every audience at once, before the next refresh recomputes
# the profile.
WITHDRAWN = """
select p.email
from latest_withdrawals as w
join marts.customer_profiles as p on p.email = w.email
where p.preferences.email_status = 'subscribed'
    and w.withdrawn_at > coalesce(p.preferences.consent_updated_at, timestamp '1970-01-01')
"""


def audience_now(
    connection: duckdb.DuckDBPyConnection, lake: LakeResource
) -> tuple[pl.DataFrame, set[str], set[str]]:
    """The subscribed members less whoever withdrew since (their addresses), and every address
    an ESP must not mail. The ESP events are read from the lake (a local folder or S3)."""
    members = connection.sql(SUBSCRIBED_MEMBERS).pl()
    events = lake.scan("raw", "esp_events")
    withdrawn: set[str] = set()
    if events is not None:
        latest = (
            events.filter(pl.col("event").is_in(WITHDRAWALS))
            .group_by("email")
            .agg(pl.col("timestamp").max().alias("withdrawn_at"))
            .collect()
        )
        connection.register("latest_withdrawals", latest.to_arrow())
        try:
            withdrawn = {r[0] for r in connection.execute(WITHDRAWN).fetchall()}
        finally:
            connection.unregister("latest_withdrawals")
    suppressed = {r[0] for r in connection.execute(SUPPRESSED).fetchall()} | withdrawn
    return members.filter(~pl.col("email").is_in(sorted(withdrawn))), withdrawn, suppressed


class DeliveryConfig(dg.Config):
    """``dry_run``: report what a sync would change, send nothing. ``full``: a file export
    writes every current member as added, not just the change since the last export."""

    dry_run: bool = False
    full: bool = False


def _export_files(
    esp: str,
    warehouse: WarehouseResource,
    exports: ExportsResource,
    config: DeliveryConfig,
    context: dg.AssetExecutionContext,
) -> dg.MaterializeResult:
    with warehouse.connect(read_only=True) as connection:
        members, withdrawn, _ = audience_now(connection, context.resources.lake)
    export_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    counts = export(exports.store(), esp, members, export_id, full=config.full)
    files = counts.pop("_files")["written"]
    added = sum(c["added"] for c in counts.values())
    removed = sum(c["removed"] for c in counts.values())
    context.log.info(f"{esp}: {added} added, {removed} removed, {files} files")
    return dg.MaterializeResult(
        metadata={
            "mode": "files",
            "dagster/row_count": members.height,
            "added": added,
            "removed": removed,
            "files_written": files,
            "per_segment": dg.MetadataValue.json(counts),
            "export_id": export_id if files else "no change",
            "full": config.full,
            "withdrawn_since_refresh": len(withdrawn),
        },
    )


def _sync(
    esp: str,
    api: dg.ConfigurableResource,
    warehouse: WarehouseResource,
    config: DeliveryConfig,
    context: dg.AssetExecutionContext,
) -> dg.MaterializeResult:
    with warehouse.connect(read_only=False) as connection:
        audience, withdrawn, suppressed = audience_now(connection, context.resources.lake)
        if withdrawn:
            context.log.info(
                f"{esp}: {len(withdrawn)} people withdrew since the last refresh (ESP events): "
                "left out, and suppressed where the ESP has them"
            )
        report = sync(
            connection,
            api,
            audience,
            context.run.run_id,
            config.dry_run,
            context.log.info,
            suppressed=suppressed,
        )
    totals = report.totals()
    if report.errors:
        context.log.warning(
            f"{esp}: {len(report.errors)} people refused, each in marts.sync_errors with the "
            f"ESP's reason (first: {report.errors[0][1][:200]})"
        )
    return dg.MaterializeResult(
        metadata={
            "mode": "dry run" if config.dry_run else "api",
            "dagster/row_count": audience.height,
            **totals,
            "people_changed": report.people,
            "suppressed": report.suppressed,
            "withdrawn_since_refresh": len(withdrawn),
            "batches": report.batches,
            "per_segment": dg.MetadataValue.json(report.per_segment()),
        },
    )


def _delivery_asset(esp: str) -> dg.AssetsDefinition:
    vendor, variable, files = ESP_NAMES[esp]

    @dg.asset(
        key=["activation", f"{esp}_export"],
        group_name="activation",
        deps=[AUDIENCE, *GATES],
        kinds={esp, "api"},
        tags={"layer": "activation"},
        pool=WAREHOUSE_POOL,
        required_resource_keys={"warehouse", "exports", "lake", f"{esp}_api"},
        description=f"{vendor}: the segments' subscribed members, delivered. With {variable} "
        f"set, synced through {vendor}'s API (the changes since what {vendor} last "
        "acknowledged, batch by batch; marts.sync_log and marts.sync_errors say what happened); "
        f"without it, written as {files} under exports/{esp}/.",
    )
    def _asset(context: dg.AssetExecutionContext, config: DeliveryConfig) -> dg.MaterializeResult:
        api = getattr(context.resources, f"{esp}_api")
        warehouse: WarehouseResource = context.resources.warehouse
        if api.enabled:
            return _sync(esp, api, warehouse, config, context)
        return _export_files(esp, warehouse, context.resources.exports, config, context)

    return _asset


SUPPRESSION = dg.AssetKey(["activation", "suppression_list"])


@dg.asset(
    key=SUPPRESSION,
    group_name="activation",
    deps=GATES,
    kinds={"csv"},
    tags={"layer": "activation"},
    pool=WAREHOUSE_POOL,
    description="Addresses ESPs must not mail (unsubscribed, bounced, complained, and anyone "
    "whose withdrawal reached the ESP events since the last refresh), one row per address.",
)
def suppression_list(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    exports: ExportsResource,
    lake: LakeResource,
) -> dg.MaterializeResult:
    with warehouse.connect(read_only=True) as connection:
        rows = connection.sql(
            "select email, preferences.email_status as reason, "
            "preferences.consent_updated_at as since from marts.customer_profiles "
            "where email is not null and preferences.email_status in "
            "('unsubscribed', 'bounced', 'complained') order by email"
        ).pl()
        _, withdrawn, _ = audience_now(connection, lake)
    # Who withdrew since the last refresh (an ESP webhook, say) is suppressed already.
    late = pl.DataFrame(
        {"email": sorted(withdrawn), "reason": "withdrawn since the last refresh"},
        schema={"email": pl.String, "reason": pl.String},
    ).with_columns(since=pl.lit(None, dtype=rows.schema["since"]))
    rows = pl.concat([rows, late.select(rows.columns)]).sort("email")
    target = exports.root / "suppression" / "suppressions.csv"
    write_bytes_atomic(target, rows.write_csv().encode())
    reasons = dict(rows.group_by("reason").len().iter_rows()) if rows.height else {}
    context.log.info(f"suppression list: {rows.height} addresses")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows.height,
            "reasons": reasons,
            "path": dg.MetadataValue.path(str(target)),
        },
    )


delivery_assets = [_delivery_asset(esp) for esp in FORMATS]
activation_assets = [*delivery_assets, suppression_list]
EXPORT_KEYS = [dg.AssetKey(["activation", f"{esp}_export"]) for esp in FORMATS]
