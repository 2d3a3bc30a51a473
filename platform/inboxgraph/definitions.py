"""The one Definitions of the Inboxgraph code location."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from assets.lake import lake_assets, source_specs
from assets.warehouse import warehouse_dbt_models
from inboxgraph.dbt_project import dbt_executable, dbt_project
from inboxgraph.partitions import received_date_partitions
from inboxgraph.resources.wiring import source_resources
from inboxgraph.sensors import landing_sensor

EVENT_LAKE_KEYS = [dg.AssetKey(["lake", "web_events"]), dg.AssetKey(["lake", "esp_events"])]

ingest_events_job = dg.define_asset_job(
    "ingest_events",
    selection=dg.AssetSelection.assets(*EVENT_LAKE_KEYS),
    partitions_def=received_date_partitions,
    description="Land web and ESP events of the selected received dates in the lake.",
)

refresh_job = dg.define_asset_job(
    "refresh_warehouse",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*EVENT_LAKE_KEYS),
    description="Extract the CRM, the shop and enrichment, then rebuild the warehouse and marts.",
    executor_def=dg.multiprocess_executor.configured({"max_concurrent": 2}),
)

nightly_refresh = dg.ScheduleDefinition(
    name="nightly_refresh",
    job=refresh_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly batch: incremental extracts, then profiles and segments as of now.",
)

defs = dg.Definitions(
    assets=[*source_specs, *lake_assets, warehouse_dbt_models],
    jobs=[ingest_events_job, refresh_job],
    schedules=[nightly_refresh],
    sensors=[landing_sensor],
    resources={
        **source_resources(),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable()),
    },
    executor=dg.multiprocess_executor.configured({"max_concurrent": 2}),
)


def ingest_events() -> dg.JobDefinition:
    """The events job, resolved, for running through the instance (``dg.reconstructable``)."""
    return defs.resolve_job_def("ingest_events")


def refresh_warehouse() -> dg.JobDefinition:
    return defs.resolve_job_def("refresh_warehouse")
