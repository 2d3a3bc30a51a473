"""Lake -> warehouse -> marts: the dbt project, one Dagster asset per model."""

import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from inboxgraph.dbt_project import dbt_project, ensure_manifest
from inboxgraph.objectstore import apply_dbt_environment
from inboxgraph.resources.lake import LakeResource
from inboxgraph.stream import ensure_stream_table

WAREHOUSE_POOL = "warehouse"

FOLDER_GROUPS = {"hubspot": "crm"}

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
    """Keys by layer (``warehouse`` for staging and intermediate, ``marts``), groups by domain."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
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


translator = InboxgraphDbtTranslator(
    settings=DagsterDbtTranslatorSettings(enable_code_references=False)
)


class WarehouseConfig(dg.Config):
    """When profiles and segments are evaluated (ISO timestamp); empty means now."""

    as_of: str = ""
    full_refresh: bool = False


@dbt_assets(
    manifest=ensure_manifest(),
    project=dbt_project,
    dagster_dbt_translator=translator,
    name="warehouse_dbt_models",
    pool=WAREHOUSE_POOL,
    retry_policy=dg.RetryPolicy(max_retries=1, delay=10),
)
def warehouse_dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    lake: LakeResource,
    config: WarehouseConfig,
) -> Iterator[Any]:
    """The warehouse: staging views, identity graph, profiles and segments, built by dbt."""
    ensure_stream_table(lake)
    apply_dbt_environment(lake.location)  # an S3 lake selects the profile's `s3` output
    args = ["build", "--vars", json.dumps({"as_of": config.as_of or None})]
    if config.full_refresh:
        args.append("--full-refresh")
    yield from (dbt.cli(args, context=context).stream().fetch_row_counts().fetch_column_metadata())
