"""The whole code location loads and its asset graph resolves, so nothing rots."""

from __future__ import annotations

import dagster as dg

from inboxgraph.settings import Paths

SOURCES = (
    "web_events",
    "hubspot_contacts",
    "shop_customers",
    "shop_orders",
    "shop_order_items",
    "shop_products",
    "enrichment",
    "esp_events",
)


def test_definitions_load_and_the_graph_runs_sources_to_marts(platform_home: Paths) -> None:
    from inboxgraph.definitions import defs

    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    for source in SOURCES:
        assert f"sources/{source}" in keys
        assert f"lake/{source}" in keys
        lake_node = graph.get(dg.AssetKey(["lake", source]))
        assert dg.AssetKey(["sources", source]) in lake_node.parent_keys
    for mart in ("identity_map", "customer_profiles", "segment_memberships", "segments"):
        assert f"marts/{mart}" in keys
    staging = graph.get(dg.AssetKey(["warehouse", "stg_web__events"]))
    assert staging.parent_keys == {dg.AssetKey(["lake", "web_events"])}
    upstream = graph.get(dg.AssetKey(["marts", "segment_memberships"])).parent_keys
    assert dg.AssetKey(["marts", "customer_profiles"]) in upstream
    assert graph.asset_check_keys, "dbt tests are asset checks"
    assert {job.name for job in defs.jobs} >= {"ingest_events", "refresh_warehouse"}
    assert defs.resolve_job_def("ingest_events").partitions_def is not None
    assert graph.get(dg.AssetKey(["lake", "web_events"])).group_name == "web"
    assert graph.get(dg.AssetKey(["marts", "customer_profiles"])).group_name == "profiles"
