"""Sources -> lake: every source landed as partitioned Parquet, bad records quarantined."""

import hashlib
import json
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType

import dagster as dg
import polars as pl

from inboxgraph.crash import stop_when_interrupted
from inboxgraph.objectstore import name_of
from inboxgraph.partitions import PARTITION_RANGE, RECEIVED_DATE, received_date_partitions
from inboxgraph.privacy import drop_tombstoned, read_tombstones
from inboxgraph.quality.drift import assess_fields
from inboxgraph.resources.crm_api import HubspotPull, SalesforcePull
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.mixpanel import MixpanelExport
from inboxgraph.resources.sources import (
    EnrichmentSource,
    EventFolderSource,
    HubspotContactsSource,
    SalesforceRecordsSource,
    ShopDatabase,
)
from inboxgraph.sensors import DATA_VERSION_TAG, landed_version, landing_observations
from inboxgraph.transforms import (
    enrichment,
    esp_events,
    ga4_events,
    hubspot,
    mixpanel_events,
    salesforce,
    shop,
    web_events,
)
from inboxgraph.transforms.common import empty_quarantine, field_counts, split_quarantine

# Recorded with every materialization (and in the audit trail): bump when a lake transform
# changes what it writes.
CODE_VERSION = "lake-1"
# A range run logs its first and last day and a day at most this often between them: each log
# line is one event in the instance's event log, and each day's figures are on its partition's
# materialization anyway.
PROGRESS_SECONDS = 10.0

SOURCE_SPECS = {
    "web_events": ("web", "Segment Spec events from the website and apps, as landed."),
    "ga4_events": ("web", "Google Analytics 4 events, as BigQuery exports them."),
    "mixpanel_events": ("web", "Mixpanel events, as its Raw Event Export API returns them."),
    "esp_events": ("esp", "SendGrid Event Webhook events (deliveries, opens, clicks, bounces)."),
    "hubspot_contacts": ("crm", "HubSpot CRM contacts (v3 API payloads)."),
    "salesforce_contacts": ("crm", "Salesforce Contacts (REST API SOQL query responses)."),
    "salesforce_leads": ("crm", "Salesforce Leads (REST API SOQL query responses)."),
    "shop_customers": ("shop", "The shop database's customers table."),
    "shop_orders": ("shop", "The shop database's orders table."),
    "shop_order_items": ("shop", "The shop database's order lines."),
    "shop_products": ("shop", "The shop database's product catalogue."),
    "enrichment": ("enrichment", "Third-party enrichment files, one per provider."),
}

source_specs = [
    dg.AssetSpec(
        key=["sources", name],
        group_name=group,
        description=description,
        kinds={"sql"} if group == "shop" else {"file"},
        tags={"layer": "sources"},
    )
    for name, (group, description) in SOURCE_SPECS.items()
]


def _reason_counts(quarantined: pl.DataFrame) -> dict[str, int]:
    if quarantined.is_empty():
        return {}
    counts = quarantined.group_by("reason").len().sort("reason")
    return dict(zip(counts["reason"], counts["len"], strict=True))


def _result(
    rows_in: int,
    landed: int,
    quarantined: pl.DataFrame,
    paths: list[str],
    started: float,
    schema: dg.TableSchema | None = None,
    data_version: str | None = None,
    **extra: object,
) -> dg.MaterializeResult:
    """The materialization's metadata. ``data_version`` names what the table holds: the same
    version as before tells the warehouse nothing changed (inboxgraph.rebuild)."""
    metadata: dict[str, object] = {
        "dagster/row_count": landed,
        "rows_in": rows_in,
        "rows_landed": landed,
        "rows_quarantined": quarantined.height,
        "quarantine_reasons": _reason_counts(quarantined),
        "duration_s": round(time.monotonic() - started, 3),
        "paths": dg.MetadataValue.json(paths[:50]),
        "partitions_written": len(paths),
    }
    if schema is not None:
        metadata["dagster/column_schema"] = schema
    metadata.update(extra)
    return dg.MaterializeResult(
        metadata=metadata,
        data_version=dg.DataVersion(data_version) if data_version else None,
    )


def _digest(parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _files_version(lake: LakeResource, source: str) -> str:
    """What an incrementally extracted table holds: its batch files (each batch a new file)
    and, on a local lake, their sizes and modification times, so a file rewritten in place
    (an erasure, a repair by hand) is a change too."""
    files: list[list[object]] = []
    for path in lake.files("raw", source):
        if isinstance(path, Path):
            stat = path.stat()
            name = str(path.relative_to(lake.table_dir("raw", source)))
            files.append([name, stat.st_size, stat.st_mtime_ns])
        else:
            files.append([path])
    return _digest([CODE_VERSION, files])


def column_schema(frame: pl.DataFrame) -> dg.TableSchema:
    """The columns a lake table holds, as the UI shows them."""
    return dg.TableSchema(
        columns=[dg.TableColumn(name, str(dtype)) for name, dtype in frame.schema.items()]
    )


def _partition_metadata(
    rows_in: int,
    good: pl.DataFrame,
    bad: pl.DataFrame,
    erased: int,
    path: str | None,
) -> dict[str, object]:
    """One received date's own figures (zeros for a day with no landed files)."""
    metadata: dict[str, object] = {
        "dagster/row_count": good.height,
        "rows_in": rows_in,
        "rows_landed": good.height,
        "rows_quarantined": bad.height,
        "rows_erased": erased,
        "quarantine_reasons": _reason_counts(bad),
        "path": path or "",
    }
    if good.width:
        metadata["dagster/column_schema"] = column_schema(good)
    return metadata


# ------------------------------------------------------------------ daily event sources
def _event_lake_asset(
    source: str, transform: ModuleType, landed_by: dg.AssetKey | None = None
) -> dg.AssetsDefinition:
    """``landed_by``: the asset that saves the source's files into the landing zone, if any."""
    group, description = SOURCE_SPECS[source]
    key = dg.AssetKey(["lake", source])

    # A single-run backfill policy (one run reads a range of days) is a beta parameter of
    # dg.asset: its notice is not printed on every start of every command.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        as_lake_asset = dg.asset(
            key=key,
            group_name=group,
            deps=[dg.AssetKey(["sources", source]), *([landed_by] if landed_by else [])],
            partitions_def=received_date_partitions,
            backfill_policy=dg.BackfillPolicy.single_run(),
            kinds={"polars", "parquet"},
            tags={"layer": "lake"},
            description=f"{description} One row per message, partitioned by received date.",
            required_resource_keys={"lake", f"{source}_source"},
            retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
            code_version=CODE_VERSION,
            check_specs=[
                dg.AssetCheckSpec(
                    "schema_drift",
                    asset=key,
                    description="New top-level fields or required fields missing at landing.",
                )
            ],
        )

    @as_lake_asset
    def _asset(
        context: dg.AssetExecutionContext,
    ) -> Iterator[dg.MaterializeResult | dg.AssetMaterialization]:
        started = time.monotonic()
        lake: LakeResource = context.resources.lake
        reader: EventFolderSource = getattr(context.resources, f"{source}_source")
        landed_days = set(reader.partitions())
        to_read = [d for d in context.partition_keys if d in landed_days]
        # What Dagster knows of these days' files, recorded before they are read: files that
        # change meanwhile are a newer version, and a run that dies leaves its days stale.
        for observation in landing_observations(context.instance, reader, to_read):
            context.log_event(observation)
        tombstones = read_tombstones(lake)
        # Counts only: a day's quarantined rows are a slice of its whole batch (Polars string
        # views share the batch's buffers), so keeping them kept every day's batch in memory.
        totals: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        own: dict[str, dict[str, object]] = {}
        fields: Counter[str] = Counter()
        logged_at, read = None, 0
        with stop_when_interrupted():
            for day in context.partition_keys:
                partition = {RECEIVED_DATE: day}
                if day not in landed_days:
                    lake.delete_partition("raw", source, partition)
                    lake.delete_partition("quarantine", source, partition)
                    own[day] = _partition_metadata(0, pl.DataFrame(), pl.DataFrame(), 0, None)
                    continue
                lines = reader.read_lines(day)
                prepared = transform.prepare(lines, date.fromisoformat(day)).collect()
                prepared, removed = drop_tombstoned(prepared, source, tombstones)
                seen, records = field_counts(prepared)
                fields.update(seen)
                totals["parsed"] += records
                good, bad = split_quarantine(prepared.lazy(), list(transform.LANDED_COLUMNS))
                lake.write("quarantine", source, bad, partition)
                path = lake.write("raw", source, good, partition)
                own[day] = _partition_metadata(lines.height, good, bad, removed, path)
                totals.update(
                    {"in": lines.height, "landed": good.height, "quarantined": bad.height}
                )
                totals["erased"] += removed
                reasons.update(own[day]["quarantine_reasons"])
                read, now = read + 1, time.monotonic()
                if logged_at is None or now - logged_at >= PROGRESS_SECONDS or read == len(to_read):
                    logged_at = now
                    context.log.info(
                        f"{source} {day}: {lines.height} in, {good.height} landed, "
                        f"{bad.height} quarantined (day {read} of {len(to_read)})"
                    )
        drift = assess_fields(
            dict(fields), totals["parsed"], transform.KNOWN_FIELDS, transform.REQUIRED_FIELDS
        )
        keys = context.partition_keys
        # Dagster records this result on every partition of the run's range; the events after
        # it give each partition its own figures, so the partitions view and the plots show
        # the day's rows, not the run's.
        yield dg.MaterializeResult(
            metadata={
                PARTITION_RANGE: f"{keys[0]}..{keys[-1]}",
                "partitions_written": sum(1 for m in own.values() if m["path"]),
                "range_rows_in": totals["in"],
                "range_rows_landed": totals["landed"],
                "range_rows_quarantined": totals["quarantined"],
                "range_rows_erased": totals["erased"],
                "range_quarantine_reasons": dict(sorted(reasons.items())),
                "duration_s": round(time.monotonic() - started, 3),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="schema_drift",
                    passed=drift.passed,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"reasons": drift.reasons, **drift.metadata},
                )
            ],
        )
        for day, metadata in own.items():
            yield dg.AssetMaterialization(asset_key=key, partition=day, metadata=metadata)

    return _asset


web_events_lake = _event_lake_asset("web_events", web_events)
esp_events_lake = _event_lake_asset("esp_events", esp_events)
ga4_events_lake = _event_lake_asset("ga4_events", ga4_events)

MIXPANEL_EXPORT = dg.AssetKey(["landing", "mixpanel_events"])


@dg.asset(
    key=MIXPANEL_EXPORT,
    group_name="web",
    deps=[dg.AssetKey(["sources", "mixpanel_events"])],
    kinds={"mixpanel", "dlt"},
    tags={"layer": "landing"},
    retry_policy=dg.RetryPolicy(max_retries=2, delay=60),
    description="Mixpanel's Raw Event Export API, one request per day, saved into "
    "landing/mixpanel/<day>/ in the export's format (live mode: INBOXGRAPH_MIXPANEL_SECRET set; "
    "otherwise the shop drops export files there itself). Resumes at the first day not saved, "
    "re-reading the last two.",
)
def mixpanel_export(
    context: dg.AssetExecutionContext, mixpanel: MixpanelExport
) -> dg.MaterializeResult:
    if not mixpanel.enabled:
        context.log.info(
            "INBOXGRAPH_MIXPANEL_SECRET is not set: Mixpanel lands from export files only"
        )
        return dg.MaterializeResult(metadata={"mode": "files", "days_saved": 0})
    started = time.monotonic()
    days = mixpanel.days_to_pull()
    if not days:  # a start date still to come
        return dg.MaterializeResult(metadata={"mode": "api", "days_saved": 0})
    context.log.info(f"pulling Mixpanel's export of {days[0]} .. {days[-1]} ({len(days)} days)")
    with stop_when_interrupted():
        saved = mixpanel.pull(days, context.log.info)
    return dg.MaterializeResult(
        metadata={
            "mode": "api",
            "days_saved": len(saved),
            "events_saved": sum(saved.values()),
            "events_per_day": dg.MetadataValue.json(saved),
            "duration_s": round(time.monotonic() - started, 3),
        }
    )


mixpanel_events_lake = _event_lake_asset("mixpanel_events", mixpanel_events, MIXPANEL_EXPORT)


# ------------------------------------------------------------------ incremental sources
def _batch_key() -> dict[str, str]:
    return {"extracted_at": datetime.now().astimezone().strftime("%Y%m%dT%H%M%S%fZ")}


def _since(lake: LakeResource, source: str, column: str, lookback: timedelta) -> datetime | None:
    high_water_mark = lake.max_value(source, column)
    return None if high_water_mark is None else high_water_mark - lookback


def _folder_unchanged(
    context: dg.AssetExecutionContext, lake: LakeResource, source: str, stamps: str | None
) -> bool:
    """Whether ``source``'s landing folder holds the files last landed: their version, observed
    on ``sources/<source>`` before a landing that finished, and the lake still holds the table.
    Otherwise the folder's version is observed now, before its files are read; files without
    stamps (an object store) are read on every run."""
    if stamps is None:
        return False
    key = dg.AssetKey(["sources", source])
    # The landing code is part of what was landed: a new one reads every file again.
    version = f"{CODE_VERSION}:{stamps}"
    if landed_version(context.instance, key, context.asset_key) == version and lake.files(
        "raw", source
    ):
        return True
    context.log_event(dg.AssetObservation(asset_key=key, tags={DATA_VERSION_TAG: version}))
    return False


def _kept(
    context: dg.AssetExecutionContext, lake: LakeResource, source: str, files: int, started: float
) -> dg.MaterializeResult:
    """An extract whose folder is unchanged since it landed: nothing read, the table as it is."""
    context.log.info(f"{source}: {files} file(s) unchanged since they landed")
    return _result(
        0,
        0,
        empty_quarantine(),
        [],
        started,
        data_version=_files_version(lake, source),
        files_unchanged=files,
    )


def _land_batch(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    source: str,
    prepared: pl.LazyFrame,
    columns: tuple,
    rows_in: int,
    started: float,
    one_per_text: bool = False,
    **extra: object,
) -> dg.MaterializeResult:
    """Land the records not already in the lake (the lookback re-reads some) as one batch."""
    known = lake.fingerprints(source)
    unseen = prepared.filter(~pl.col("_fingerprint").is_in(known.implode()))
    if one_per_text:
        # A CRM record is one version per text: read twice (the pages of two pulls overlap
        # at their boundary), it lands once. (Two equal order lines are two lines.)
        unseen = unseen.unique("_fingerprint", keep="first", maintain_order=True)
    fresh, erased = drop_tombstoned(unseen.collect(), source, read_tombstones(lake))
    good, bad = split_quarantine(fresh.lazy(), list(columns))
    unchanged = rows_in - good.height - bad.height - erased
    paths = []
    first_batch = not lake.files("raw", source)
    if good.height or bad.height or first_batch:
        batch = _batch_key()
        if bad.height:
            lake.write("quarantine", source, bad, batch)
        paths.append(lake.write("raw", source, good, batch))
    context.log.info(
        f"{source}: {rows_in} read, {good.height} landed, {bad.height} quarantined, "
        f"{unchanged} already in the lake"
    )
    return _result(
        rows_in,
        good.height,
        bad,
        paths,
        started,
        schema=column_schema(good),
        data_version=_files_version(lake, source),
        rows_unchanged=unchanged,
        rows_erased=erased,
        **extra,
    )


HUBSPOT_PULL = dg.AssetKey(["landing", "hubspot_contacts"])
SALESFORCE_PULL = dg.AssetKey(["landing", "salesforce"])


def _run_pull(
    context: dg.AssetExecutionContext, api: HubspotPull | SalesforcePull, files_only: str
) -> dg.MaterializeResult:
    """A CRM pull in live mode (its metadata: what it saved), or nothing in files mode."""
    if not api.enabled:
        context.log.info(files_only)
        return dg.MaterializeResult(metadata={"mode": "files"})
    started = time.monotonic()
    with stop_when_interrupted():
        counts = api.pull(context.log.info)
    return dg.MaterializeResult(
        metadata={
            "mode": "api",
            **{
                k: dg.MetadataValue.json(v) if isinstance(v, dict) else v for k, v in counts.items()
            },
            "duration_s": round(time.monotonic() - started, 3),
        }
    )


@dg.asset(
    key=HUBSPOT_PULL,
    group_name="crm",
    deps=[dg.AssetKey(["sources", "hubspot_contacts"])],
    kinds={"hubspot", "dlt"},
    tags={"layer": "landing"},
    description="HubSpot's CRM v3 contacts, pulled with a private-app token "
    "(INBOXGRAPH_HUBSPOT_TOKEN): the search endpoint from the newest modification time saved, "
    "split at its 10,000-result ceiling, and the contacts archived since; each response page "
    "saved into landing/hubspot/contacts/ as it arrives. Without a token the shop drops export "
    "pages there itself.",
)
def hubspot_pull(
    context: dg.AssetExecutionContext, hubspot_api: HubspotPull
) -> dg.MaterializeResult:
    return _run_pull(
        context, hubspot_api, "INBOXGRAPH_HUBSPOT_TOKEN is not set: HubSpot lands from files only"
    )


@dg.asset(
    key=SALESFORCE_PULL,
    group_name="crm",
    deps=[
        dg.AssetKey(["sources", "salesforce_contacts"]),
        dg.AssetKey(["sources", "salesforce_leads"]),
    ],
    kinds={"salesforce", "dlt"},
    tags={"layer": "landing"},
    description="Salesforce Contacts and Leads through the REST API's queryAll (deleted records "
    "included), from the newest SystemModstamp saved, following nextRecordsUrl; each response "
    "page saved into landing/salesforce/<contact|lead>/ as it arrives. Live when "
    "INBOXGRAPH_SALESFORCE_INSTANCE_URL is set with a token or a connected app's client "
    "credentials; otherwise the shop drops query response pages there itself.",
)
def salesforce_pull(
    context: dg.AssetExecutionContext, salesforce_api: SalesforcePull
) -> dg.MaterializeResult:
    return _run_pull(
        context,
        salesforce_api,
        "INBOXGRAPH_SALESFORCE_INSTANCE_URL and a token are not set: Salesforce lands from "
        "files only",
    )


@dg.asset(
    name="hubspot_contacts",
    key_prefix="lake",
    group_name="crm",
    deps=[dg.AssetKey(["sources", "hubspot_contacts"]), HUBSPOT_PULL],
    kinds={"polars", "parquet"},
    tags={"layer": "lake"},
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
    code_version=CODE_VERSION,
)
def hubspot_contacts_lake(
    context: dg.AssetExecutionContext, lake: LakeResource, crm: HubspotContactsSource
) -> dg.MaterializeResult:
    """CRM contacts, one row per contact version, extracted incrementally by updatedAt; a
    folder of pages unchanged since it landed is not read again."""
    started = time.monotonic()
    pages = crm.files()
    if _folder_unchanged(context, lake, "hubspot_contacts", crm.version(pages)):
        return _kept(context, lake, "hubspot_contacts", len(pages), started)
    since = _since(lake, "hubspot_contacts", "updated_at", timedelta(minutes=crm.lookback_minutes))
    contacts = crm.read(since)
    return _land_batch(
        context,
        lake,
        "hubspot_contacts",
        hubspot.prepare(contacts),
        hubspot.LANDED_COLUMNS,
        contacts.height,
        started,
        one_per_text=True,
        since=str(since),
    )


def _salesforce_lake_asset(source: str) -> dg.AssetsDefinition:
    group, description = SOURCE_SPECS[source]

    @dg.asset(
        name=source,
        key_prefix="lake",
        group_name=group,
        deps=[dg.AssetKey(["sources", source]), SALESFORCE_PULL],
        kinds={"polars", "parquet"},
        tags={"layer": "lake"},
        retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
        code_version=CODE_VERSION,
        required_resource_keys={"lake", f"{source}_source"},
        description=f"{description} One row per record version (deleted ones too, as "
        "queryAll returns them), extracted incrementally by SystemModstamp.",
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        started = time.monotonic()
        lake: LakeResource = context.resources.lake
        reader: SalesforceRecordsSource = getattr(context.resources, f"{source}_source")
        pages = reader.files()
        if _folder_unchanged(context, lake, source, reader.version(pages)):
            return _kept(context, lake, source, len(pages), started)
        lookback = timedelta(minutes=reader.lookback_minutes)
        since = _since(lake, source, "system_modstamp", lookback)
        records = reader.read(since)
        return _land_batch(
            context,
            lake,
            source,
            salesforce.prepare(records, source),
            salesforce.landed_columns(source),
            records.height,
            started,
            one_per_text=True,
            since=str(since),
        )

    return _asset


salesforce_contacts_lake = _salesforce_lake_asset("salesforce_contacts")
salesforce_leads_lake = _salesforce_lake_asset("salesforce_leads")


SHOP_TABLES = ("customers", "orders", "order_items", "products")
SHOP_WATERMARKS = {
    "customers": "updated_at",
    "orders": "updated_at",
    "order_items": "order_updated_at",
}


def _shop_spec(table: str) -> dg.AssetSpec:
    source = f"shop_{table}"
    group, description = SOURCE_SPECS[source]
    return dg.AssetSpec(
        ["lake", source],
        group_name=group,
        deps=[dg.AssetKey(["sources", source])],
        kinds={"polars", "parquet"},
        tags={"layer": "lake"},
        code_version=CODE_VERSION,
        description=(
            f"{description} One row per row version, extracted incrementally by updated_at."
            if table in SHOP_WATERMARKS
            else f"{description} A full snapshot, replaced on every run."
        ),
    )


def _land_shop_table(
    context: dg.AssetExecutionContext, lake: LakeResource, shop_db: ShopDatabase, table: str
) -> dg.MaterializeResult:
    started = time.monotonic()
    source = f"shop_{table}"
    watermark = SHOP_WATERMARKS.get(table)
    if watermark is None:
        rows = shop_db.read(table, None)
        good, bad = split_quarantine(shop.prepare(table, rows), list(shop.landed_columns(table)))
        lake.write("quarantine", source, bad)
        path = lake.write("raw", source, good)
        # A snapshot is written again every run: its version is its rows, in any order.
        rows_digest = hashlib.sha256(good.hash_rows().sort().to_numpy().tobytes()).hexdigest()
        return _result(
            rows.height,
            good.height,
            bad,
            [path],
            started,
            schema=column_schema(good),
            data_version=_digest([CODE_VERSION, rows_digest, good.columns]),
        )
    since = _since(lake, source, watermark, timedelta(minutes=shop_db.lookback_minutes))
    rows = shop_db.read(table, since)
    return _land_batch(
        context,
        lake,
        source,
        shop.prepare(table, rows),
        shop.landed_columns(table),
        rows.height,
        started,
        since=str(since),
        database=shop_db.safe_url,
    )


@dg.multi_asset(
    name="shop_tables",
    specs=[_shop_spec(table) for table in SHOP_TABLES],
    can_subset=True,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
)
def shop_tables(
    context: dg.AssetExecutionContext, lake: LakeResource, shop_db: ShopDatabase
) -> Iterator[dg.MaterializeResult]:
    """The shop database's tables in the lake, each extracted incrementally (products whole)."""
    for table in SHOP_TABLES:
        key = dg.AssetKey(["lake", f"shop_{table}"])
        if key in context.selected_asset_keys:
            result = _land_shop_table(context, lake, shop_db, table)
            yield dg.MaterializeResult(
                asset_key=key, metadata=result.metadata, data_version=result.data_version
            )


@dg.asset(
    name="enrichment",
    key_prefix="lake",
    group_name="enrichment",
    deps=[dg.AssetKey(["sources", "enrichment"])],
    kinds={"polars", "parquet"},
    tags={"layer": "lake"},
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5),
    code_version=CODE_VERSION,
)
def enrichment_lake(
    context: dg.AssetExecutionContext, lake: LakeResource, enrichment_files: EnrichmentSource
) -> dg.MaterializeResult:
    """Enrichment attributes, one row per address and provider (each file a full snapshot).

    The folder's data version (its files' names, sizes and times) is observed on
    ``sources/enrichment`` before the files are read; when it equals the version last landed
    (inboxgraph.sensors.landed_version), no file is read again and the table stays.
    """
    started = time.monotonic()
    files = enrichment_files.files()
    stamps = enrichment_files.version(files)
    # What the table holds, the same whether the files are read or kept; files read without a
    # stamp (an object store) are always news.
    data_version = None if stamps is None else _digest(f"{CODE_VERSION}:{stamps}")
    if _folder_unchanged(context, lake, "enrichment", stamps):
        context.log.info(f"enrichment: {len(files)} file(s) unchanged since they landed")
        return _result(
            0,
            0,
            empty_quarantine(),
            [str(path) for path in lake.files("raw", "enrichment")],
            started,
            data_version=data_version,
            files_unchanged=len(files),
        )
    rows_in = landed = 0
    paths: list[str] = []
    quarantine_frames = []
    tombstones = read_tombstones(lake)
    for path in files:
        provider = name_of(path).removesuffix(".csv")
        rows = enrichment_files.read(path)
        prepared, _ = drop_tombstoned(
            enrichment.prepare(rows, provider).collect(), "enrichment", tombstones
        )
        good, bad = split_quarantine(prepared.lazy(), list(enrichment.LANDED_COLUMNS))
        lake.write("quarantine", "enrichment", bad, {"provider": provider})
        paths.append(lake.write("raw", "enrichment", good, {"provider": provider}))
        rows_in += rows.height
        landed += good.height
        quarantine_frames.append(bad)
    if not paths and not lake.files("raw", "enrichment"):
        empty = pl.DataFrame(
            schema={
                "email": pl.String,
                "provider": pl.String,
                "attributes": pl.String,
                "_source_file": pl.String,
                "_line": pl.Int64,
                "_fingerprint": pl.UInt64,
            }
        )
        paths.append(lake.write("raw", "enrichment", empty, {"provider": "none"}))
    quarantined = pl.concat(quarantine_frames) if quarantine_frames else empty_quarantine()
    context.log.info(
        f"enrichment: {rows_in} read, {landed} landed, {quarantined.height} quarantined"
    )
    return _result(
        rows_in,
        landed,
        quarantined,
        paths,
        started,
        data_version=data_version,
        files_unchanged=0,
    )


STREAM_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=15), warn_window=timedelta(minutes=5)
)
events_topic = dg.AssetSpec(
    key=["sources", "events_topic"],
    group_name="web",
    kinds={"kafka"},
    tags={"layer": "sources"},
    description="The Kafka topic the collector produces tracked events to.",
)
web_events_stream = dg.AssetSpec(
    key=["lake", "web_events_stream"],
    group_name="web",
    deps=[events_topic.key],
    kinds={"kafka", "parquet"},
    tags={"layer": "lake"},
    freshness_policy=STREAM_FRESHNESS,
    description="Segment messages landed by `inboxgraph stream` from Kafka, one file per topic, "
    "partition and offset range; each landed batch is reported as a materialization.",
)

lake_assets = [
    mixpanel_export,
    hubspot_pull,
    salesforce_pull,
    web_events_lake,
    ga4_events_lake,
    mixpanel_events_lake,
    esp_events_lake,
    hubspot_contacts_lake,
    salesforce_contacts_lake,
    salesforce_leads_lake,
    shop_tables,
    enrichment_lake,
]
stream_specs = [events_topic, web_events_stream]
