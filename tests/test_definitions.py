"""The whole code location loads and its asset graph resolves, so nothing rots."""

from __future__ import annotations

import dagster as dg

from inboxgraph.settings import Paths
from tests.conftest import outside_environment

SOURCES = (
    "web_events",
    "ga4_events",
    "mixpanel_events",
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
    assert staging.parent_keys == {
        dg.AssetKey(["lake", "web_events"]),
        dg.AssetKey(["warehouse", "stg_ga4__events"]),
        dg.AssetKey(["warehouse", "stg_mixpanel__events"]),
    }
    for vendor in ("ga4", "mixpanel"):
        vendor_staging = graph.get(dg.AssetKey(["warehouse", f"stg_{vendor}__events"]))
        assert vendor_staging.parent_keys == {dg.AssetKey(["lake", f"{vendor}_events"])}
        assert graph.get(dg.AssetKey(["lake", f"{vendor}_events"])).group_name == "web"
    upstream = graph.get(dg.AssetKey(["marts", "segment_memberships"])).parent_keys
    assert dg.AssetKey(["marts", "customer_profiles"]) in upstream
    assert graph.asset_check_keys, "dbt tests are asset checks"
    assert {job.name for job in defs.jobs} >= {"ingest_events", "refresh_warehouse"}
    assert defs.resolve_job_def("ingest_events").partitions_def is not None
    assert graph.get(dg.AssetKey(["lake", "web_events"])).group_name == "web"
    assert graph.get(dg.AssetKey(["marts", "customer_profiles"])).group_name == "profiles"


def test_the_graph_reads_as_a_product(platform_home: Paths) -> None:
    """Owners, descriptions of every check and mart column, no unserializable metadata, and
    names the lineage graph keeps apart when it shortens them (first 8 and last 9 letters)."""
    import json

    from inboxgraph.assets.warehouse import MANIFEST
    from inboxgraph.definitions import defs

    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, key
        for name, value in node.metadata.items():
            assert type(value).__name__ != "DbtProject", (key, name)
    for assets_def in defs.assets:
        for spec in getattr(assets_def, "check_specs", []):
            assert spec.description, spec.key
    labels: dict[str, str] = {}
    for key in graph.get_all_asset_keys():
        name = key.path[-1]
        label = f"{name[:8]}…{name[-9:]}" if len(name) > 20 else name
        assert labels.setdefault(label, name) == name, (label, labels[label], name)
    manifest = json.loads(MANIFEST.read_text())
    for node in manifest["nodes"].values():
        if node["resource_type"] == "model" and node["fqn"][1] == "marts":
            undescribed = [c for c, props in node["columns"].items() if not props["description"]]
            assert node["description"] and not undescribed, (node["name"], undescribed)


def test_importing_the_definitions_changes_no_variable(tmp_path: object) -> None:
    """A code server that loaded `.env` (every location empty) keeps each variable as it was,
    so every dg.EnvVar the resources read still resolves when a run is launched."""
    import subprocess
    import sys

    env = outside_environment()
    empty = ("INBOXGRAPH_LANDING_URL", "INBOXGRAPH_LAKE_URL", "INBOXGRAPH_WAREHOUSE")
    env.update({name: "" for name in empty})
    env["INBOXGRAPH_HOME"] = str(tmp_path)
    script = (
        "import json, os; before = dict(os.environ); import inboxgraph.definitions; "
        "print(json.dumps([k for k in set(before) | set(os.environ) "
        "if k.startswith(('INBOXGRAPH_', 'DAGSTER_', 'DBT_')) "
        "and before.get(k) != os.environ.get(k)]))"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert ran.stdout.strip().splitlines()[-1] == "[]"


def test_the_schedule_skips_a_tick_while_a_refresh_is_unfinished(platform_home: Paths) -> None:
    """A refresh that overruns the cron (a minute's cron in a demo, a slow night) does not stack
    runs behind the warehouse's single writer: the tick is skipped and says which run it waits
    for; once that run has finished, the next tick starts a refresh."""
    from inboxgraph.definitions import nightly_refresh

    with dg.instance_for_test() as instance:
        tick = nightly_refresh(dg.build_schedule_context(instance=instance))
        assert isinstance(tick, dg.RunRequest)

        run = instance.create_run_for_job(dg.GraphDefinition("refresh_warehouse").to_job())
        instance.handle_run_event(
            run.run_id,
            dg.DagsterEvent(
                event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name
            ),
        )
        skipped = nightly_refresh(dg.build_schedule_context(instance=instance))
        assert isinstance(skipped, dg.SkipReason)
        assert run.run_id in skipped.skip_message and "started" in skipped.skip_message

        instance.report_run_failed(instance.get_run_by_id(run.run_id))
        tick = nightly_refresh(dg.build_schedule_context(instance=instance))
        assert isinstance(tick, dg.RunRequest)
