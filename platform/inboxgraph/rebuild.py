"""What a warehouse build must rebuild, answered from Dagster's own records.

A dbt model (or seed) is rebuilt when Dagster's records say something it is built from changed
since its last build: it was never built or is missing from the warehouse, its code version
changed (its SQL, its config or the project's macros), it is evaluated at an as-of other than
the one it holds, a dbt parent was rebuilt after it, or a lake asset it reads was materialized
after its last build began with a data version other than the one its provenance recorded
(the extracts run every time and keep their data version when nothing landed; event partitions,
stream batches and erasures are always changes). The UI, the schedule and the command line all
launch the same asset, so they all get the same answer; a full refresh rebuilds everything.
"""

from __future__ import annotations

import graphlib
import hashlib
import json
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import dagster as dg

# The tags Dagster records each materialization's data version in, and whether the asset gave
# it (else Dagster derived it from code and inputs, which says nothing about what landed).
DATA_VERSION_TAG = "dagster/data_version"
USER_PROVIDED_TAG = "dagster/data_version_is_user_provided"
# The metadata entry of a model evaluated at the run's as-of: the as-of it was built at.
AS_OF = "inboxgraph/as_of"
AS_OF_MACRO = "macro.inboxgraph.as_of"
# The metadata entry of a materialization that confirms an asset without rebuilding it.
UNCHANGED = "inboxgraph/unchanged"
# What a confirmation does not carry over from the build it confirms: that run's own figures.
RUN_METADATA = {"Execution Duration", "invocation_id", "status"}
UNIQUE_ID = "dagster_dbt/unique_id"


def macros_digest(manifest: Mapping[str, Any]) -> str:
    """A digest of the project's own macros: a changed macro changes every model's code."""
    project = manifest.get("metadata", {}).get("project_name")
    macros = {
        uid: macro.get("macro_sql")
        for uid, macro in manifest.get("macros", {}).items()
        if macro.get("package_name") == project
    }
    return hashlib.sha256(json.dumps(macros, sort_keys=True).encode()).hexdigest()[:16]


def node_code_version(node: Mapping[str, Any], digest: str) -> str:
    """A node's code version: its SQL (or a seed's file checksum), its config and the macros."""
    code = node.get("raw_code") or node.get("checksum", {}).get("checksum") or ""
    config = json.dumps(node.get("config", {}), sort_keys=True, default=str)
    return hashlib.sha256(f"{code}\n{config}\n{digest}".encode()).hexdigest()[:24]


def as_of_models(manifest: Mapping[str, Any]) -> set[str]:
    """The unique ids of the nodes whose SQL reads the run's as-of (macro as_of, directly or
    through other macros)."""
    macros = manifest.get("macros", {})
    reads: dict[str, bool] = {}

    def reads_as_of(uid: str) -> bool:
        if uid not in reads:
            reads[uid] = False  # a cycle reads nothing new
            reads[uid] = uid == AS_OF_MACRO or any(
                reads_as_of(dep)
                for dep in macros.get(uid, {}).get("depends_on", {}).get("macros", [])
            )
        return reads[uid]

    return {
        uid
        for uid, node in manifest.get("nodes", {}).items()
        if any(reads_as_of(m) for m in node.get("depends_on", {}).get("macros", []))
    }


def run_started(instance: dg.DagsterInstance, entry: dg.EventLogEntry) -> float:
    """When the run that logged ``entry`` started (dbt read the lake after that, not before)."""
    record = instance.get_run_record_by_id(entry.run_id)
    if record is not None and record.start_time is not None:
        return record.start_time
    return entry.timestamp


def models_to_rebuild(
    context: dg.AssetExecutionContext,
    as_of: str,
    as_of_keys: set[dg.AssetKey],
    held: set[dg.AssetKey] | None,
) -> dict[dg.AssetKey, str]:
    """The selected dbt assets to rebuild, each with why. ``as_of`` is the run's (empty: now,
    which always differs); ``held``, when known, the assets whose relation the warehouse has."""
    instance = context.instance
    assets_def = context.assets_def
    own = set(assets_def.keys)
    selected = set(context.selected_asset_keys) & own
    code_versions = {spec.key: spec.code_version for spec in assets_def.specs}
    deps = assets_def.asset_deps
    reasons: dict[dg.AssetKey, str | None] = {}

    def latest(key: dg.AssetKey, limit: int = 100, **bounds: Any) -> list[dg.EventLogRecord]:
        """The newest materializations of ``key`` (within ``bounds``), newest first."""
        return instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, **bounds), limit=limit
        ).records

    def reason(key: dg.AssetKey) -> str | None:
        if key in reasons:
            return reasons[key]
        reasons[key] = None
        records = latest(key, limit=1)
        if not records:
            found = "never built"
        elif held is not None and key not in held:
            found = "missing from the warehouse"
        else:
            found = _changed(key, records[0])
        reasons[key] = found
        return found

    def _changed(key: dg.AssetKey, built: dg.EventLogRecord) -> str | None:
        provenance = context.get_asset_provenance(key)
        if provenance is None:
            return "built before provenance was recorded"
        if provenance.code_version != code_versions.get(key):
            return "its code changed"
        if key in as_of_keys:
            held_as_of = built.asset_materialization.metadata.get(AS_OF)
            if not as_of or held_as_of is None or held_as_of.value != as_of:
                return f"evaluated at as-of {as_of or 'now'}"
        started = run_started(instance, built.event_log_entry)
        for parent in sorted(deps.get(key, ()), key=lambda k: k.to_user_string()):
            name = parent.to_user_string()
            if parent in own:
                if parent in selected and reason(parent):
                    return f"{name} is rebuilt"
                if latest(parent, after_storage_id=built.storage_id):
                    return f"{name} was rebuilt after it"
                continue
            recorded = provenance.input_data_versions.get(parent)
            for record in latest(parent, after_timestamp=started):
                tags = record.asset_materialization.tags or {}
                same = (
                    recorded is not None
                    and tags.get(USER_PROVIDED_TAG) == "true"
                    and tags.get(DATA_VERSION_TAG) == recorded.value
                )
                if not same:
                    return f"{name} changed"
        return None

    for key in sorted(selected, key=lambda k: k.to_user_string()):
        reason(key)
    return {key: why for key in selected if (why := reasons.get(key))}


def unchanged_outputs(
    context: dg.AssetExecutionContext, keys: set[dg.AssetKey]
) -> Iterator[dg.Output]:
    """An output per up-to-date asset in ``keys``, parents first, confirming its last build:
    its data version and metadata carried over, nothing rebuilt. Steps downstream in the run
    (checks, exports, the audit) run as after a build, and freshness counts from now, since the
    asset was found current now."""
    deps = context.assets_def.asset_deps
    graph = {key: set(deps.get(key, ())) & keys for key in keys}
    names = {key: name for name, key in context.assets_def.keys_by_output_name.items()}
    for key in graphlib.TopologicalSorter(graph).static_order():
        (record,) = context.instance.fetch_materializations(key, limit=1).records
        built = record.asset_materialization
        metadata: dict[str, Any] = {
            name: value for name, value in built.metadata.items() if name not in RUN_METADATA
        }
        metadata[UNCHANGED] = f"nothing it is built from changed since run {record.run_id}"
        version = (built.tags or {}).get(DATA_VERSION_TAG)
        # An output's data version is a beta parameter: its notice is not printed per asset.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            output = dg.Output(
                None,
                output_name=names[key],
                metadata=metadata,
                data_version=dg.DataVersion(version) if version else None,
            )
        yield output


def held_relations(
    connection: Any, manifest: Mapping[str, Any], unique_ids: Mapping[dg.AssetKey, str]
) -> set[dg.AssetKey]:
    """The assets whose relation (schema and name) the warehouse holds."""
    present = {
        (schema.lower(), name.lower())
        for schema, name in connection.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    held = set()
    for key, uid in unique_ids.items():
        node = manifest.get("nodes", {}).get(uid, {})
        relation = (str(node.get("schema", "")).lower(), str(node.get("alias", "")).lower())
        if relation in present:
            held.add(key)
    return held


def describe(reasons: Mapping[dg.AssetKey, str], total: int, limit: int = 8) -> Iterable[str]:
    """Lines for the run's log: how many are rebuilt, and why, the first ``limit`` of them."""
    yield f"rebuilding {len(reasons)} of {total} dbt assets"
    for key in sorted(reasons, key=lambda k: k.to_user_string())[:limit]:
        yield f"  {key.to_user_string()}: {reasons[key]}"
    if len(reasons) > limit:
        yield f"  ... and {len(reasons) - limit} more"
