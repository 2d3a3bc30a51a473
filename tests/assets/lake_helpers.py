"""Helpers to materialize the lake assets of a test home and count landing records."""

from __future__ import annotations

import csv
import gzip
import sqlite3
from pathlib import Path

import dagster as dg
import orjson
import polars as pl

from inboxgraph.assets.lake import lake_assets
from inboxgraph.partitions import EVENT_SOURCES
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.sources import EventFolderSource
from inboxgraph.resources.wiring import source_resources
from inboxgraph.settings import Paths

EVENT_KEYS = set(EVENT_SOURCES)


def _event_lake_asset(asset: dg.AssetsDefinition) -> bool:
    return any(k.path[0] == "lake" and k.path[-1] in EVENT_KEYS for k in asset.keys)


def partitioned_assets() -> list[dg.AssetsDefinition]:
    return [a for a in lake_assets if _event_lake_asset(a)]


def batch_assets() -> list[dg.AssetsDefinition]:
    """The extracts of the CRM, the shop and enrichment (not the events or their pulls)."""
    return [
        a
        for a in lake_assets
        if all(k.path[0] == "lake" for k in a.keys) and not _event_lake_asset(a)
    ]


def batch_keys(*names: str) -> list[dg.AssetKey]:
    return [k for a in batch_assets() for k in a.keys if not names or k.path[-1] in names]


def landed_days(paths: Paths) -> list[str]:
    days = set()
    for folder in EVENT_SOURCES.values():
        days.update(EventFolderSource(folder=folder, landing_url=paths.landing_url).partitions())
    return sorted(days)


def materialize_events(
    paths: Paths,
    first: str | None = None,
    last: str | None = None,
    raise_on_error: bool = True,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    days = landed_days(paths)
    return dg.materialize(
        partitioned_assets(),
        resources=source_resources(),
        instance=instance or dg.DagsterInstance.ephemeral(),
        tags={
            "dagster/asset_partition_range_start": first or days[0],
            "dagster/asset_partition_range_end": last or days[-1],
        },
        raise_on_error=raise_on_error,
    )


def materialize_batches(*names: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        batch_assets(),
        resources=source_resources(),
        selection=dg.AssetSelection.assets(*batch_keys(*names)),
    )


def metadata(result: dg.ExecuteInProcessResult, source: str) -> dict:
    for event in result.get_asset_materialization_events():
        m = event.event_specific_data.materialization
        if m.asset_key.path[-1] == source:
            return {k: v.value for k, v in m.metadata.items()}
    raise KeyError(source)


def partition_metadata(result: dg.ExecuteInProcessResult, source: str) -> dict[str, dict]:
    """Each partition's own figures (not the range's summary), by partition key."""
    found = {}
    for event in result.get_asset_materialization_events():
        m = event.event_specific_data.materialization
        if m.asset_key.path[-1] == source and "partition_range" not in m.metadata:
            found[m.partition] = {k: v.value for k, v in m.metadata.items()}
    return found


def lake(paths: Paths) -> LakeResource:
    return LakeResource(url=paths.lake_url)


def per_file_counts(paths: Paths, source: str) -> dict[str, int]:
    """Records per source file in the lake, landed plus quarantined."""
    counts: dict[str, int] = {}
    for zone in ("raw", "quarantine"):
        frame = lake(paths).scan(zone, source)
        if frame is None:
            continue
        grouped = frame.group_by("_source_file").len().collect()
        for name, n in grouped.iter_rows():
            counts[name] = counts.get(name, 0) + n
    return counts


def landing_record_counts(paths: Paths) -> dict[str, dict[str, int]]:
    """Records per source and file, counted straight from the landing zone."""
    landing = Path(paths.landing_url)
    counts: dict[str, dict[str, int]] = {}
    for source, folder in EVENT_SOURCES.items():
        for path in sorted((landing / folder).rglob("*.jsonl*")):
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            lines = [line for line in data.splitlines() if line.strip()]
            counts.setdefault(source, {})[str(path)] = len(lines)
    for page in sorted((landing / "hubspot" / "contacts").glob("*.json")):
        counts.setdefault("hubspot_contacts", {})[str(page)] = len(
            orjson.loads(page.read_bytes())["results"]
        )
    for source, folder in (("salesforce_contacts", "contact"), ("salesforce_leads", "lead")):
        for page in sorted((landing / "salesforce" / folder).glob("*.json")):
            counts.setdefault(source, {})[str(page)] = len(
                orjson.loads(page.read_bytes())["records"]
            )
    for path in sorted((landing / "enrichment").glob("*.csv")):
        with open(path, newline="") as handle:
            counts.setdefault("enrichment", {})[str(path)] = sum(1 for _ in csv.DictReader(handle))
    with sqlite3.connect(landing / "shop.db") as db:
        for table in ("customers", "orders", "order_items", "products"):
            n = db.execute(f"select count(*) from {table}").fetchone()[0]
            counts[f"shop_{table}"] = {f"sqlite:///{landing / 'shop.db'}#{table}": n}
    return counts


def reasons(paths: Paths, source: str) -> dict[str, int]:
    frame = lake(paths).scan("quarantine", source)
    if frame is None:
        return {}
    grouped = frame.group_by("reason").len().collect()
    return dict(grouped.iter_rows())


def read_table(paths: Paths, source: str, zone: str = "raw") -> pl.DataFrame:
    frame = lake(paths).scan(zone, source)
    assert frame is not None, f"no {zone} data for {source}"
    return frame.collect()


def latest_versions(rows: pl.DataFrame, key: str) -> pl.DataFrame:
    """The newest version of each ``key`` in a table extracted incrementally."""
    return rows.sort("updated_at", "extracted_at").group_by(key, maintain_order=True).last()
