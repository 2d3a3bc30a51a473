"""Asset checks: Soda contracts on the marts and the lake, volume and quarantine drift."""

from collections.abc import Iterator, Mapping

import dagster as dg
import duckdb
import polars as pl

from inboxgraph.assets.lake import SOURCE_SPECS
from inboxgraph.assets.warehouse import WAREHOUSE_POOL
from inboxgraph.partitions import RECEIVED_DATE
from inboxgraph.quality.drift import assess_volume
from inboxgraph.quality.soda import (
    LAKE_CONTRACTS,
    MART_CONTRACTS,
    ContractOutcome,
    contracts,
    lake_connection,
    lake_views,
    verify,
)
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.warehouse import WarehouseResource

# What feeds activation: a failed contract here stops every export downstream.
BLOCKING_MARTS = {"customer_profiles", "identity_map", "segment_memberships"}

# The partition column that orders each lake table's loads, oldest first.
LOAD_COLUMN = {
    "web_events": "received_date",
    "esp_events": "received_date",
    "ga4_events": "received_date",
    "mixpanel_events": "received_date",
    "hubspot_contacts": "extracted_at",
    "salesforce_contacts": "extracted_at",
    "salesforce_leads": "extracted_at",
    "shop_customers": "extracted_at",
    "shop_orders": "extracted_at",
    "shop_order_items": "extracted_at",
}


def _check_result(outcome: ContractOutcome, key: dg.AssetCheckKey) -> dg.AssetCheckResult:
    failed = outcome.failed_checks
    return dg.AssetCheckResult(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            "all checks passed"
            if outcome.passed
            else f"failed: {', '.join(failed) or outcome.errors[:200]}"
        ),
        metadata={
            "failed_checks": failed,
            "checks_passed": sum(c["outcome"] == "PASSED" for c in outcome.checks),
            "checks_total": len(outcome.checks),
            "checks": dg.MetadataValue.md(outcome.as_markdown()),
            "diagnostics": dg.MetadataValue.json(outcome.checks),
            "contract": dg.MetadataValue.path(outcome.contract),
            **({"errors": outcome.errors} if outcome.errors else {}),
        },
    )


def _spec(
    key: dg.AssetKey, name: str, description: str, blocking: bool = False
) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name, asset=key, description=description, blocking=blocking)


MART_CONTRACT_FILES = contracts(MART_CONTRACTS)
LAKE_CONTRACT_FILES = contracts(LAKE_CONTRACTS)


@dg.multi_asset_check(
    name="mart_contracts",
    specs=[
        _spec(
            dg.AssetKey(["marts", table]),
            "soda_contract",
            f"Soda contract {path.name}: schema, keys, valid values, freshness.",
            blocking=table in BLOCKING_MARTS,
        )
        for table, path in MART_CONTRACT_FILES.items()
    ],
    can_subset=True,
    pool=WAREHOUSE_POOL,
)
def mart_contracts(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.AssetCheckResult]:
    """Every selected mart's Soda contract, over one read-only attachment of the warehouse."""
    with duckdb.connect() as connection:
        warehouse.attach_read_only(connection)
        for check_key in sorted(context.selected_asset_check_keys, key=str):
            table = check_key.asset_key.path[-1]
            outcome = verify(MART_CONTRACT_FILES[table], connection)
            yield _check_result(outcome, check_key)


def run_received_dates(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """The received dates (first, last) a run landed, from its partition tags; None when it
    names none."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"], tags["dagster/partition"]
    first = tags.get("dagster/asset_partition_range_start")
    last = tags.get("dagster/asset_partition_range_end")
    return (first, last) if first and last else None


@dg.multi_asset_check(
    name="lake_contracts",
    specs=[
        _spec(
            dg.AssetKey(["lake", source]),
            "soda_contract",
            f"Soda contract {path.name} over the received dates the run landed (every "
            "partition when it landed none).",
        )
        for source, path in LAKE_CONTRACT_FILES.items()
    ],
    can_subset=True,
)
def lake_contracts(
    context: dg.AssetCheckExecutionContext, lake: LakeResource
) -> Iterator[dg.AssetCheckResult]:
    """Every selected lake table's Soda contract, over views of its Parquet partitions.

    Every check of a contract is about single rows or one received date (a message id per
    date), and a landed partition changes only when it is landed again; so a run that landed
    some received dates checks the event tables over those dates alone (each earlier date was
    checked by the run that landed it; a table with nothing landed on them has no row to
    check), and any other run checks every partition.
    """
    keys = sorted(context.selected_asset_check_keys, key=str)
    sources = [key.asset_key.path[-1] for key in keys]
    received = run_received_dates(context.run.tags)
    partitioned = frozenset(s for s, column in LOAD_COLUMN.items() if column == RECEIVED_DATE)
    with lake_connection(lake, sources, received, partitioned) as connection:
        viewed = lake_views(connection)
        for key, source in zip(keys, sources, strict=True):
            if source in partitioned and source not in viewed:
                # An empty partition (no ESP events on a day), or an event source this shop
                # does not use (no GA4 export ever landed): no row to check. An empty
                # volume is the volume drift check's to judge.
                yield _nothing_landed(key, received)
                continue
            yield _check_result(verify(LAKE_CONTRACT_FILES[source], connection), key)


def _nothing_landed(key: dg.AssetCheckKey, received: tuple[str, str] | None) -> dg.AssetCheckResult:
    if received is None:
        where = "nothing has landed"
    else:
        first, last = received
        where = f"nothing landed on {first if first == last else f'{first} to {last}'}"
    return dg.AssetCheckResult(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=True,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{where}: no row to check",
        metadata={"received_dates": list(received or ()), "rows_checked": 0},
    )


def partition_volumes(lake: LakeResource, source: str) -> pl.DataFrame:
    """Rows landed and quarantined per load (partition), oldest first."""
    column = LOAD_COLUMN.get(source)
    frames = []
    for zone, name in (("raw", "landed"), ("quarantine", "quarantined")):
        scan = lake.scan(zone, source)
        if scan is None:
            continue
        key = pl.col(column).cast(pl.String) if column else pl.lit("snapshot")
        frames.append(scan.group_by(key.alias("partition")).agg(pl.len().alias(name)).collect())
    if not frames:
        return pl.DataFrame(
            schema={"partition": pl.String, "landed": pl.UInt32, "quarantined": pl.UInt32}
        )
    volumes = frames[0]
    for frame in frames[1:]:
        volumes = volumes.join(frame, on="partition", how="full", coalesce=True)
    for name in ("landed", "quarantined"):
        if name not in volumes.columns:
            volumes = volumes.with_columns(pl.lit(0).alias(name))
    volumes = volumes.with_columns(pl.col("landed", "quarantined").fill_null(0))
    if column == "extracted_at":
        # The first extraction is the initial full load, not a day's volume.
        volumes = volumes.sort("partition").slice(1)
    return volumes


@dg.multi_asset_check(
    name="lake_volume_drift",
    specs=[
        _spec(
            dg.AssetKey(["lake", source]),
            "volume_drift",
            "The newest load's volume and quarantine rate against the last 28 (z-score), "
            "and the quarantine rate against 5%.",
        )
        for source in SOURCE_SPECS
    ],
    can_subset=True,
)
def lake_volume_drift(
    context: dg.AssetCheckExecutionContext, lake: LakeResource
) -> Iterator[dg.AssetCheckResult]:
    """Volume and quarantine-rate drift of every selected lake table."""
    for key in sorted(context.selected_asset_check_keys, key=str):
        assessment = assess_volume(partition_volumes(lake, key.asset_key.path[-1]))
        yield dg.AssetCheckResult(
            asset_key=key.asset_key,
            check_name=key.name,
            passed=assessment.passed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"reasons": assessment.reasons, **assessment.metadata},
        )


quality_checks = [mart_contracts, lake_contracts, lake_volume_drift]
