"""The main job: materialize the whole asset graph through the Dagster instance.

Two runs, exactly as the UI would launch them: ``ingest_events`` over the range of received
dates that have landed files (one run for the whole range, the assets' backfill policy), then
``refresh_warehouse`` (incremental extracts, dbt, checks). Both are recorded in the instance
under DAGSTER_HOME, so ``dagster dev`` shows them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
from filelock import FileLock

from inboxgraph.crash import process_tags, reclaim_dead_runs, wait_for_pool
from inboxgraph.dbt_project import ensure_manifest
from inboxgraph.identity_health import ACCEPT_TAG
from inboxgraph.partitions import EVENT_SOURCES, PARTITION_RANGE, received_date_partitions
from inboxgraph.project_files import platform_dir
from inboxgraph.rebuild import UNCHANGED
from inboxgraph.resources.sources import EventFolderSource
from inboxgraph.resources.warehouse import WAREHOUSE_POOL
from inboxgraph.sensors import contiguous_ranges, range_tags, stale_days
from inboxgraph.settings import Paths

INSTANCE_TEMPLATE = platform_dir() / "dagster.yaml"
STABILITY_CHECK = "marts/identity_map:identity_stability"
# Step-level progress on the console; Dagster's DEBUG events stay in the instance's event log.
CONSOLE_LOGGING = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass
class RunSummary:
    """What a run of the whole graph did, for people and for tests."""

    run_ids: list[str] = field(default_factory=list)
    succeeded: bool = True
    lake: dict[str, dict[str, int]] = field(default_factory=dict)
    warehouse_rows: dict[str, int] = field(default_factory=dict)
    profiles: int = 0
    email_status: dict[str, int] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)
    checks_passed: int = 0
    checks_failed: list[str] = field(default_factory=list)
    checks_warned: list[str] = field(default_factory=list)
    skipped_days: list[str] = field(default_factory=list)
    failed_steps: dict[str, str] = field(default_factory=dict)
    # dbt assets the refresh confirmed without rebuilding (nothing they are built from changed)
    unchanged: int = 0


def prepare_instance(paths: Paths) -> dg.DagsterInstance:
    """The Dagster instance under DAGSTER_HOME, created from platform/dagster.yaml if new."""
    home = Path(paths.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    # Processes starting together (several stream workers, say) must not both create the
    # SQLite storage: the second would fail on tables the first is creating.
    with FileLock(home / ".inboxgraph-instance.lock"):
        config = home / "dagster.yaml"
        if not config.exists():
            shutil.copyfile(INSTANCE_TEMPLATE, config)
        return dg.DagsterInstance.from_config(str(home))


def _event_sources(paths: Paths) -> list[EventFolderSource]:
    return [
        EventFolderSource(
            folder=folder, source=source, landing_url=paths.landing_url, home=paths.home
        )
        for source, folder in EVENT_SOURCES.items()
    ]


def landed_days(paths: Paths) -> list[str]:
    return sorted({day for source in _event_sources(paths) for day in source.partitions()})


def _collect(result: dg.ExecuteJobResult, summary: RunSummary) -> None:
    summary.run_ids.append(result.run_id)
    summary.succeeded = summary.succeeded and result.success
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization  # type: ignore[union-attr]
        key = materialization.asset_key
        metadata = {k: v.value for k, v in materialization.metadata.items()}
        if PARTITION_RANGE in metadata:
            continue  # a range run's summary; each partition reports its own rows
        if key.path[0] == "lake":
            totals = summary.lake.setdefault(key.path[-1], {"in": 0, "landed": 0, "quarantined": 0})
            totals["in"] += int(metadata.get("rows_in", 0))
            totals["landed"] += int(metadata.get("rows_landed", 0))
            totals["quarantined"] += int(metadata.get("rows_quarantined", 0))
        elif UNCHANGED in metadata:
            summary.unchanged += 1
        elif "dagster/row_count" in metadata and "unique_id" in metadata:  # a dbt model
            summary.warehouse_rows[key.to_user_string()] = int(metadata["dagster/row_count"])
    for event in result.all_events:
        if event.is_step_failure and event.step_key:
            failure = event.step_failure_data
            user = failure.user_failure_data
            error = failure.error
            reason = user.description if user and user.description else None
            if reason is None and error is not None:
                reason = error.message.strip().splitlines()[0]
            summary.failed_steps[event.step_key] = reason or "failed"
    for evaluation in result.get_asset_check_evaluations():
        name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        if evaluation.passed:
            summary.checks_passed += 1
        elif evaluation.severity == dg.AssetCheckSeverity.WARN:
            summary.checks_warned.append(name)
        else:
            summary.checks_failed.append(name)


def _read_marts(paths: Paths, summary: RunSummary) -> None:
    if not Path(paths.warehouse).exists():
        return
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        tables = {
            row[0]
            for row in con.sql(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        if "customer_profiles" in tables:
            summary.profiles = con.sql("select count(*) from marts.customer_profiles").fetchone()[0]
            summary.email_status = dict(
                con.sql(
                    "select preferences.email_status, count(*) from marts.customer_profiles "
                    "group by 1 order by 1"
                ).fetchall()
            )
        if "segments" in tables:
            summary.segments = dict(
                con.sql(
                    "select segment_id, member_count from marts.segments order by segment_id"
                ).fetchall()
            )


def run_pipeline(
    paths: Paths,
    as_of: datetime | None = None,
    full_refresh: bool = False,
    log: Callable[[str], None] = print,
    reingest: bool = False,
    warehouse: bool = True,
    pool_wait_seconds: float = 1800,
    accept_identity_changes: bool = False,
) -> RunSummary:
    """Land the received dates whose files are new or changed (every landed date with
    ``reingest``), then refresh the warehouse (unless not ``warehouse``); returns the summary.

    ``accept_identity_changes`` tags the refresh so the identity stability check lets exports
    through whatever share of people were merged or split."""
    ensure_manifest(refresh=True)
    from inboxgraph import definitions

    instance = prepare_instance(paths)
    reclaim_dead_runs(instance, log)
    summary = RunSummary()
    # The vendors' APIs first, each pull its own run: one failing is reported and the rest of
    # the run lands what the last good pull saved.
    pulls = {
        "pull_mixpanel": "Mixpanel's export of new days",
        "pull_crm": "the CRMs' changes since the last pull",
    }
    for job, what in pulls.items():
        if not any(os.environ.get(name) for name in definitions.PULL_VARIABLES[job]):
            continue
        log(f"{job}: {what}")
        result = dg.execute_job(
            definitions.job_to_run(job),
            instance=instance,
            run_config=CONSOLE_LOGGING,
            tags={**process_tags(), "inboxgraph/trigger": "cli"},
        )
        _collect(result, summary)
        if not result.success:
            log(f"{job} failed (run {result.run_id}); landing what the last good pull saved")
    partition_keys = received_date_partitions.get_partition_keys()
    valid = set(partition_keys)
    days = landed_days(paths)
    summary.skipped_days = [d for d in days if d not in valid]
    if summary.skipped_days:
        log(f"skipping received dates outside the partitions: {summary.skipped_days}")
    if not days:
        log("no web or ESP events have landed; skipping ingest_events")
    stale = [
        d for d in (days if reingest else stale_days(instance, _event_sources(paths))) if d in valid
    ]
    if days and not stale:
        log(f"ingest_events: all {len(days)} received dates are already in the lake")
    for first, last in contiguous_ranges(stale, partition_keys):
        n = partition_keys.index(last) - partition_keys.index(first) + 1
        log(f"ingest_events: received dates {first} .. {last} ({n} day{'s' * (n != 1)})")
        result = dg.execute_job(
            definitions.job_to_run("ingest_events"),
            instance=instance,
            run_config=CONSOLE_LOGGING,
            tags={**range_tags(first, last), **process_tags(), "inboxgraph/trigger": "cli"},
        )
        _collect(result, summary)
        if not result.success:
            log(f"ingest_events failed (run {result.run_id})")
            return summary
    if not warehouse:
        return summary
    log("refresh_warehouse: CRM, shop and enrichment extracts, dbt build, checks")
    run_config = {
        **CONSOLE_LOGGING,
        "ops": {
            "warehouse_dbt_models": {
                "config": {
                    "as_of": as_of.strftime("%Y-%m-%d %H:%M:%S") if as_of else "",
                    "full_refresh": full_refresh,
                }
            }
        },
    }
    wait_for_pool(instance, WAREHOUSE_POOL, pool_wait_seconds, log)
    tags = {**process_tags(), "inboxgraph/trigger": "cli"}
    if accept_identity_changes:
        tags[ACCEPT_TAG] = "true"
    result = dg.execute_job(
        definitions.job_to_run("refresh_warehouse"),
        instance=instance,
        run_config=run_config,
        tags=tags,
    )
    _collect(result, summary)
    _read_marts(paths, summary)
    return summary


def run_suggestions(
    paths: Paths, threshold: float, log: Callable[[str], None] = print
) -> tuple[RunSummary, list[tuple]]:
    """Materialize marts.identity_suggestions through the instance; returns the summary and
    the suggested pairs (left email, right email, match probability), most probable first."""
    ensure_manifest(refresh=True)
    from inboxgraph import definitions

    instance = prepare_instance(paths)
    summary = RunSummary()
    log(f"suggest_identities: scoring probable duplicates (match probability >= {threshold})")
    result = dg.execute_job(
        definitions.job_to_run("suggest_identities"),
        instance=instance,
        run_config={
            **CONSOLE_LOGGING,
            "ops": {"marts__identity_suggestions": {"config": {"threshold": threshold}}},
        },
        tags={**process_tags(), "inboxgraph/trigger": "cli"},
    )
    _collect(result, summary)
    if not result.success:
        return summary, []
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        pairs = con.sql(
            "select left_email, right_email, match_probability from marts.identity_suggestions "
            "order by match_probability desc, left_email, right_email"
        ).fetchall()
    return summary, pairs


def format_summary(summary: RunSummary) -> str:
    lines = ["", "lake                  rows in      landed  quarantined"]
    for source, totals in sorted(summary.lake.items()):
        lines.append(
            f"  {source:<18}{totals['in']:>10,}  {totals['landed']:>10,}"
            f"  {totals['quarantined']:>11,}"
        )
    if summary.warehouse_rows:
        lines.append(
            f"warehouse: {len(summary.warehouse_rows)} models built, "
            f"{sum(summary.warehouse_rows.values()):,} rows"
        )
    if summary.unchanged:
        lines.append(
            f"warehouse: {summary.unchanged} models and seeds unchanged (nothing they are built "
            "from changed), not rebuilt"
        )
    lines.append(f"profiles: {summary.profiles:,} people")
    for status, n in summary.email_status.items():
        lines.append(f"  {status:<14}{n:>10,}")
    lines.append("segments (subscribed members):")
    for segment, n in summary.segments.items():
        lines.append(f"  {segment:<20}{n:>10,}")
    lines.append(
        f"checks: {summary.checks_passed} passed, {len(summary.checks_warned)} warned, "
        f"{len(summary.checks_failed)} failed"
    )
    lines.extend(f"  WARN   {name}" for name in summary.checks_warned)
    lines.extend(f"  FAILED {name}" for name in summary.checks_failed)
    if STABILITY_CHECK in summary.checks_failed:
        lines.append(
            "  exports wait: more people were merged or split than var identity allows; see the "
            "check's largest merges in the UI (or `inboxgraph explain`), fix the source or add "
            "an override, or accept with `inboxgraph run --accept-identity-changes`"
        )
    lines.append(
        f"runs: {', '.join(summary.run_ids)} ({'succeeded' if summary.succeeded else 'FAILED'})"
    )
    lines.extend(f"  {step} failed: {reason}" for step, reason in summary.failed_steps.items())
    return "\n".join(lines)
