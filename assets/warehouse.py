"""Lake -> warehouse -> marts: the dbt project, one Dagster asset per model."""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from inboxgraph.crash import stop_when_interrupted
from inboxgraph.dbt_project import (
    DBT_PROJECT_DIR,
    build_events,
    dbt_run_environment,
    ensure_manifest,
    invocation_dir,
)
from inboxgraph.lineage import ColumnLineageCache, project_fingerprint
from inboxgraph.objectstore import apply_dbt_environment
from inboxgraph.partitions import WEB_SOURCES
from inboxgraph.rebuild import (
    AS_OF,
    UNIQUE_ID,
    as_of_models,
    describe,
    held_relations,
    macros_digest,
    models_to_rebuild,
    node_code_version,
    run_started,
    unchanged_outputs,
)
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.warehouse import WAREHOUSE_POOL, WarehouseResource
from inboxgraph.stream import ensure_stream_table

FOLDER_GROUPS = {"hubspot": "crm", "salesforce": "crm", "ga4": "web", "mixpanel": "web"}

MART_GROUPS = {
    "identity_map": "identity",
    "identity_links": "identity",
    "customer_profiles": "profiles",
    "segment_memberships": "segments",
    "segments": "segments",
    "audience_members": "activation",
    "customer_profiles_live": "live",
    "cart_abandoners_live": "live",
}


class InboxgraphDbtTranslator(DagsterDbtTranslator):
    """Keys by layer (``warehouse`` for staging and intermediate, ``marts``), groups by domain;
    code versions that change with a node's SQL, its config or the project's macros."""

    def __init__(self, settings: DagsterDbtTranslatorSettings | None = None) -> None:
        super().__init__(settings)
        self._digests: dict[str, str] = {}  # the macros' digest per parsed manifest

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props.get("resource_type") in ("model", "seed", "snapshot"):
            parsed = str(manifest.get("metadata", {}).get("invocation_id"))
            if parsed not in self._digests:
                self._digests[parsed] = macros_digest(manifest)
            digest = self._digests[parsed]
            spec = spec.replace_attributes(code_version=node_code_version(props, digest))
        if props.get("resource_type") != "model":
            return spec
        fqn = props["fqn"]
        layer = fqn[1] if len(fqn) > 2 else "marts"
        name = props["name"]
        if layer == "marts":
            key = dg.AssetKey(["marts", name])
            group = MART_GROUPS.get(name, "profiles")
        else:
            key = dg.AssetKey(["warehouse", name])
            group = FOLDER_GROUPS.get(fqn[2], fqn[2]) if len(fqn) > 3 else layer
        return spec.replace_attributes(key=key, group_name=group).merge_attributes(
            tags={"layer": "marts" if layer == "marts" else "warehouse"}
        )

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: Any,
    ) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        node = manifest["nodes"].get(unique_id, {})
        description = node.get("description") or check_description(node.get("test_metadata"))
        return spec._replace(description=description) if description else spec


def check_description(test_metadata: Mapping[str, Any] | None) -> str | None:
    """A sentence for a generic dbt test, from its name and arguments (a singular test's own
    description is in its YAML)."""
    if not test_metadata:
        return None
    kwargs = test_metadata.get("kwargs", {})
    column = f"`{kwargs.get('column_name')}`"
    # The incremental models' tests over their new rows say the same (dbt/macros/tested_rows.sql).
    match str(test_metadata.get("name")).removesuffix("_in_new_rows"):
        case "unique":
            return f"Every {column} is unique."
        case "not_null":
            return f"{column} is never null."
        case "unique_and_not_null":
            return f"Every {column} is present and unique: the table's primary key."
        case "accepted_values":
            return f"{column} is one of: {', '.join(map(str, kwargs.get('values', [])))}."
        case "relationships":
            target = str(kwargs.get("to", "")).removeprefix("ref('").removesuffix("')")
            return f"Every {column} exists in `{target}`.`{kwargs.get('field')}`."
    return None


translator = InboxgraphDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_code_references=False)
)


# The dbt vars (macro received_dates) naming the received dates the incremental models read:
# per var, the lake event tables it covers and the models that read them by received date. The
# web analytics sources are one stream of web events in the warehouse.
INCREMENTAL_EVENT_MODELS = {
    "web_received_dates": (
        WEB_SOURCES,
        (
            dg.AssetKey(["warehouse", "int_web__events_parsed"]),
            dg.AssetKey(["warehouse", "int_person__web_activity_aggregated"]),
            dg.AssetKey(["warehouse", "int_identity__links_collected"]),
        ),
    ),
    "esp_received_dates": (
        ("esp_events",),
        (
            dg.AssetKey(["warehouse", "stg_esp__events"]),
            dg.AssetKey(["warehouse", "int_identity__links_collected"]),
        ),
    ),
}


def received_dates(instance: dg.DagsterInstance, var: str) -> list[str] | None:
    """The window of the incremental models behind ``var``: the received dates of their lake
    event tables whose partitions were written since the models' last builds started.

    That is every day they have not read: a new day, a late or rewritten file for a day they
    hold, a partition committed while dbt was running. Dates are counted from the oldest of the
    models' last builds, so a run that built only some of them leaves nothing unread for the
    others. None when none of them has been built in this instance: they read every day.
    """
    sources, models = INCREMENTAL_EVENT_MODELS[var]
    builds = [instance.get_latest_materialization_event(key) for key in models]
    started = [run_started(instance, event) for event in builds if event is not None]
    if not started:
        return None
    days: set[str] = set()
    for source in sources:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(
                asset_key=dg.AssetKey(["lake", source]), after_timestamp=min(started)
            ),
            limit=10_000,
        ).records
        days.update(
            record.asset_materialization.partition
            for record in records
            if record.asset_materialization and record.asset_materialization.partition
        )
    return sorted(days)


def _unique_ids(context: dg.AssetExecutionContext) -> dict[dg.AssetKey, str]:
    """The dbt node behind each dbt asset (its spec names it)."""
    return {
        spec.key: str(spec.metadata[UNIQUE_ID])
        for spec in context.assets_def.specs
        if UNIQUE_ID in spec.metadata
    }


def _plan(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    config: "WarehouseConfig",
    manifest: Mapping[str, Any],
    unique_ids: Mapping[dg.AssetKey, str],
    as_of_keys: set[dg.AssetKey],
    selected: set[dg.AssetKey],
) -> dict[dg.AssetKey, str]:
    """The ``selected`` dbt assets this run rebuilds, each with why (inboxgraph.rebuild)."""
    if config.full_refresh:
        return dict.fromkeys(selected, "full refresh")
    held: set[dg.AssetKey] = set()
    if os.path.exists(warehouse.resolved_path):
        with warehouse.connect() as connection:
            held = held_relations(connection, manifest, unique_ids)
    return models_to_rebuild(context, config.as_of, as_of_keys, held)


def _with_as_of(
    events: Iterator[Any], outputs: Mapping[str, dg.AssetKey], as_of: str
) -> Iterator[Any]:
    """Each model evaluated at the as-of records it (the next run compares its own with it)."""
    for event in events:
        if isinstance(event, dg.Output) and event.output_name in outputs:
            event = event.with_metadata({**event.metadata, AS_OF: as_of or "now"})
        yield event


class WarehouseConfig(dg.Config):
    """When profiles and segments are evaluated (ISO timestamp); empty means now."""

    as_of: str = ""
    full_refresh: bool = False


# The manifest the assets are defined from (the runner keeps it current before importing them).
MANIFEST = ensure_manifest()
# Lineage follows the project's code and the models' columns, not the data, so every platform
# home built from this project shares it.
LINEAGE_CACHE = DBT_PROJECT_DIR / "target" / "inboxgraph_column_lineage.json"


@dbt_assets(
    manifest=MANIFEST,
    dagster_dbt_translator=translator,
    name="warehouse_dbt_models",
    pool=WAREHOUSE_POOL,
    retry_policy=dg.RetryPolicy(max_retries=1, delay=10),
)
def warehouse_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    lake: LakeResource,
    warehouse: WarehouseResource,
    config: WarehouseConfig,
) -> Iterator[Any]:
    """The warehouse: staging views, identity graph, profiles and segments, built by dbt."""
    ensure_stream_table(lake)
    apply_dbt_environment(lake.location)  # an S3 lake selects the profile's `s3` output
    # The profile and the lake views read the locations the resources resolved, so dbt
    # writes the warehouse this run's resources name whatever the process's environment holds.
    settings = {
        "INBOXGRAPH_WAREHOUSE": warehouse.resolved_path,
        "INBOXGRAPH_LAKE_URL": lake.location,
    }
    # The run's own settings are dbt vars (macros as_of and received_dates). Vars that differ
    # from the last parse's make dbt parse the whole project again (seconds), so the as-of is
    # passed only when the run names one: a nightly run at now keeps the as-of out of them.
    dbt_vars: dict[str, Any] = {"as_of": config.as_of} if config.as_of else {}
    for name, (sources, _) in INCREMENTAL_EVENT_MODELS.items():
        window = received_dates(context.instance, name)
        if window is not None:
            landed = ", ".join(sources)
            context.log.info(f"{landed}: received dates to read: {window or 'none'}")
            dbt_vars[name] = window
    unique_ids = _unique_ids(context)
    manifest = json.loads(MANIFEST.read_text())
    reading_as_of = as_of_models(manifest)
    as_of_keys = {key for key, uid in unique_ids.items() if uid in reading_as_of}
    selected = set(context.selected_asset_keys) & set(context.assets_def.keys)
    rebuild = _plan(context, warehouse, config, manifest, unique_ids, as_of_keys, selected)
    for line in describe(rebuild, len(selected)):
        context.log.info(line)
    up_to_date = selected - set(rebuild)
    yield from unchanged_outputs(context, up_to_date)
    if not rebuild:
        context.log.info(
            "the warehouse is up to date: nothing it is built from changed since its last build"
        )
        return
    args = ["build"]
    if config.full_refresh:
        args.append("--full-refresh")
    if dbt_vars:
        args += ["--vars", json.dumps(dbt_vars)]
    if up_to_date:
        # Their tests are not run again either: their rows are the ones tested before.
        names = sorted(unique_ids[key].split(".")[-1] for key in up_to_date)
        args += ["--exclude", " ".join(names)]
    as_of_outputs = {
        name: key
        for name, key in context.assets_def.keys_by_output_name.items()
        if key in as_of_keys
    }
    with stop_when_interrupted(), dbt_run_environment(settings):
        target = invocation_dir("warehouse_dbt_models", context.run.run_id)
        invocation = dbt.cli(args, context=context, target_path=target)
        lineage = ColumnLineageCache(
            LINEAGE_CACHE,
            project_fingerprint(invocation.manifest),
            building=[unique_ids[key] for key in rebuild],
        )
        events = build_events(invocation, with_column_lineage=not lineage.reusable)
        yield from _with_as_of(lineage.attach(events), as_of_outputs, config.as_of)
