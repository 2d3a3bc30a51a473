"""The one Definitions of the Inboxgraph code location."""

from __future__ import annotations

import os
from datetime import timedelta

import dagster as dg

from inboxgraph.alerts import AlertWebhook
from inboxgraph.assets.activation import activation_assets
from inboxgraph.assets.audit import audit_log
from inboxgraph.assets.identity import SUGGESTIONS, identity_checks, identity_suggestions
from inboxgraph.assets.lake import (
    HUBSPOT_PULL,
    MIXPANEL_EXPORT,
    SALESFORCE_PULL,
    lake_assets,
    source_specs,
    stream_specs,
)
from inboxgraph.assets.quality import quality_checks
from inboxgraph.assets.warehouse import warehouse_dbt_models
from inboxgraph.dbt_project import dbt_cli
from inboxgraph.partitions import EVENT_SOURCES, nightly_cron
from inboxgraph.resources.exports import ExportsResource
from inboxgraph.resources.warehouse import WarehouseResource
from inboxgraph.resources.wiring import HOME, source_resources
from inboxgraph.sensors import alerts_sensor, landing_sensor

EVENT_LAKE_KEYS = [dg.AssetKey(["lake", source]) for source in EVENT_SOURCES]

# Daily sources land about once a day, nightly marts are rebuilt once a day: WARN after 26 h
# without a materialization, FAIL after 30 h. Stream-fed assets carry their own minutes.
DAILY_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=30), warn_window=timedelta(hours=26)
)


# Who answers for an asset: the team that runs the platform, and for the systems outside it
# (the sources) the same team as their contact.
OWNERS = ["team:data-platform"]


# Assets materialized when someone asks for them, never by a schedule: no freshness to keep.
ON_DEMAND = {SUGGESTIONS}
# Pulls from vendors' APIs, run by their own jobs (so that a vendor down never holds up the
# refresh, which lands what the last good pull saved).
PULLS = {MIXPANEL_EXPORT, HUBSPOT_PULL, SALESFORCE_PULL}


# A pull succeeds every hour while its vendor is up (its schedule runs only in live mode): a
# vendor down for hours turns its pull WARN, and FAIL after a day; the refresh meanwhile lands
# the last good pull. Pulls never run in files mode, so they have no freshness to lose there.
PULL_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=26), warn_window=timedelta(hours=3)
)


def _with_project_policies(spec: dg.AssetSpec) -> dg.AssetSpec:
    if not spec.owners:
        spec = spec.replace_attributes(owners=OWNERS)
    if spec.key in PULLS:
        return spec.replace_attributes(freshness_policy=PULL_FRESHNESS)
    exempt = spec.key.path[0] == "sources" or spec.key in ON_DEMAND
    if spec.freshness_policy is not None or exempt:
        return spec
    return spec.replace_attributes(freshness_policy=DAILY_FRESHNESS)


ingest_events_job = dg.define_asset_job(
    "ingest_events",
    selection=dg.AssetSelection.assets(*EVENT_LAKE_KEYS),
    description="Land the web (Segment, GA4, Mixpanel) and ESP events of the selected received "
    "dates in the lake.",
)

# Runs with this tag write the DuckDB warehouse; the production instance's queue starts one at
# a time (platform/deploy/dagster.yaml).
WAREHOUSE_WRITER_TAGS = {"inboxgraph/warehouse": "writer"}

refresh_job = dg.define_asset_job(
    "refresh_warehouse",
    tags=WAREHOUSE_WRITER_TAGS,
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.assets(*EVENT_LAKE_KEYS, *ON_DEMAND, *PULLS),
    description="Extract the CRM, the shop and enrichment, rebuild the warehouse and marts, "
    "check them, export audiences and record the audit trail.",
)

pull_mixpanel_job = dg.define_asset_job(
    "pull_mixpanel",
    selection=dg.AssetSelection.assets(MIXPANEL_EXPORT),
    description="Save Mixpanel's Raw Event Export of the days not yet saved (and the last two) "
    "into the landing zone; the landing_sensor lands them.",
)

pull_crm_job = dg.define_asset_job(
    "pull_crm",
    selection=dg.AssetSelection.assets(HUBSPOT_PULL, SALESFORCE_PULL),
    description="Save the HubSpot contacts and the Salesforce Contacts and Leads changed since "
    "the last pull into the landing zone, each CRM its own step (one failing leaves the other "
    "going); the next refresh_warehouse lands them.",
)

suggest_job = dg.define_asset_job(
    "suggest_identities",
    tags=WAREHOUSE_WRITER_TAGS,
    selection=dg.AssetSelection.assets(SUGGESTIONS),
    description="Score probable duplicate people (splink) into marts.identity_suggestions.",
)

# A run of the refresh in one of these is still to finish.
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dg.schedule(
    name="nightly_refresh",
    job=refresh_job,
    cron_schedule=nightly_cron(),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly batch: incremental extracts, then profiles, segments and exports. "
    "A tick while a refresh is still queued or running is skipped.",
)
def nightly_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """Start the refresh, unless one has not finished yet: an overrunning refresh (or a cron
    shorter than a refresh) never stacks runs behind the warehouse's single writer, each
    holding a run worker while it waits."""
    unfinished = context.instance.get_run_records(
        dg.RunsFilter(job_name=refresh_job.name, statuses=UNFINISHED), limit=1
    )
    if unfinished:
        run = unfinished[0].dagster_run
        return dg.SkipReason(
            f"refresh_warehouse run {run.run_id} is {run.status.value.lower()}: this tick is "
            "skipped, the next one starts a refresh once it has finished"
        )
    return dg.RunRequest()


# The variables that turn each pull's live mode on (any one of them).
PULL_VARIABLES = {
    "pull_mixpanel": ("INBOXGRAPH_MIXPANEL_SECRET",),
    "pull_crm": ("INBOXGRAPH_HUBSPOT_TOKEN", "INBOXGRAPH_SALESFORCE_INSTANCE_URL"),
}


def _pull_tick(context: dg.ScheduleEvaluationContext, job: str) -> dg.RunRequest | dg.SkipReason:
    """A pull's run, unless its vendor is read from files only or its last run is unfinished."""
    variables = PULL_VARIABLES[job]
    if not any(os.environ.get(name) for name in variables):
        return dg.SkipReason(f"{' and '.join(variables)} not set: landing from files only")
    unfinished = context.instance.get_run_records(
        dg.RunsFilter(job_name=job, statuses=UNFINISHED), limit=1
    )
    if unfinished:
        return dg.SkipReason(f"{job} run {unfinished[0].dagster_run.run_id} is unfinished")
    return dg.RunRequest()


@dg.schedule(
    name="mixpanel_hourly",
    job=pull_mixpanel_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Pulls Mixpanel's export every hour when INBOXGRAPH_MIXPANEL_SECRET is set "
    "(three requests of the API's 60 an hour).",
)
def mixpanel_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    return _pull_tick(context, pull_mixpanel_job.name)


@dg.schedule(
    name="crm_hourly",
    job=pull_crm_job,
    cron_schedule="45 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Pulls the CRMs' changes every hour when INBOXGRAPH_HUBSPOT_TOKEN or "
    "INBOXGRAPH_SALESFORCE_INSTANCE_URL is set.",
)
def crm_hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    return _pull_tick(context, pull_crm_job.name)


defs = dg.Definitions(
    assets=dg.map_asset_specs(
        _with_project_policies,
        [
            *source_specs,
            *stream_specs,
            *lake_assets,
            warehouse_dbt_models,
            *activation_assets,
            identity_suggestions,
            audit_log,
        ],
    ),
    asset_checks=[*quality_checks, *identity_checks],
    jobs=[ingest_events_job, refresh_job, suggest_job, pull_mixpanel_job, pull_crm_job],
    schedules=[nightly_refresh, mixpanel_hourly, crm_hourly],
    sensors=[landing_sensor, alerts_sensor],
    resources={
        **source_resources(),
        "dbt": dbt_cli(),
        "warehouse": WarehouseResource(path=dg.EnvVar("INBOXGRAPH_WAREHOUSE"), home=HOME),
        "exports": ExportsResource(home=HOME),
        "alert_webhook": AlertWebhook(url=dg.EnvVar("INBOXGRAPH_ALERT_WEBHOOK_URL")),
    },
    # Every run, from the UI, a schedule, a sensor or the command line, executes its steps one
    # after another in its run worker: a step process costs seconds of start-up (importing
    # Dagster, dbt and the definitions), more than most steps take, and the heavy steps
    # (DuckDB, polars, the dbt subprocess) use every core by themselves.
    executor=dg.in_process_executor,
)


def resolve_job(name: str) -> dg.JobDefinition:
    """A job of the definitions, resolved, as a run worker rebuilds it (:func:`job_to_run`)."""
    return defs.resolve_job_def(name)


def job_to_run(name: str) -> dg.ReconstructableJob:
    """A job of the definitions as ``dg.execute_job`` runs it through the instance."""
    return dg.build_reconstructable_job(__name__, resolve_job.__name__, (name,))
