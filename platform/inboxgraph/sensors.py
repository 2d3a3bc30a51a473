"""Sensors: new or changed landing folders trigger the events job for those received dates;
freshness, check and run failures reach the alert webhook."""

from collections.abc import Callable, Iterable, Sequence

import dagster as dg

from inboxgraph.alerts import Alert, AlertWebhook, alert_from_entry
from inboxgraph.partitions import START_DATE_VARIABLE, received_date_partitions
from inboxgraph.resources.sources import EventFolderSource, fingerprint

RANGE_START_TAG = "dagster/asset_partition_range_start"
# Where an asset event carries its data version (dg.AssetObservation.data_version reads it).
DATA_VERSION_TAG = "dagster/data_version"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def _latest_per_day(
    fetch: Callable[..., dg.EventRecordsResult], key: dg.AssetKey, days: set[str]
) -> dict[str, dg.EventLogRecord]:
    """Per received date in ``days``, the newest record ``fetch`` (the instance's
    ``fetch_observations`` or ``fetch_materializations``) holds for ``key``'s partition of it;
    the history is read newest first, only until every date is found."""
    found: dict[str, dg.EventLogRecord] = {}
    cursor = None
    while days - found.keys():
        page = fetch(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=sorted(days - found.keys())),
            limit=1000,
            cursor=cursor,
            ascending=False,
        )
        for record in page.records:
            event = record.asset_observation or record.asset_materialization
            if event is not None and event.partition in days:
                found.setdefault(event.partition, record)
        if not page.has_more:
            break
        cursor = page.cursor
    return found


def _observed(
    instance: dg.DagsterInstance, name: str, days: set[str]
) -> dict[str, tuple[int, str]]:
    """Per received date, the storage id and data version of its newest observation."""
    records = _latest_per_day(instance.fetch_observations, dg.AssetKey(["sources", name]), days)
    return {
        day: (record.storage_id, record.asset_observation.data_version or "")
        for day, record in records.items()
    }


def landing_observations(
    instance: dg.DagsterInstance, source: EventFolderSource, days: Iterable[str] | None = None
) -> list[dg.AssetObservation]:
    """The observations of ``source``'s landing folder to record: one for each received date
    (of ``days``, default all) whose files differ from the data version last observed for it,
    carrying the new version (in the tag Dagster's observations, Pipes and its REST API use)."""
    valid = set(received_date_partitions.get_partition_keys())
    current = {d: v for d, v in source.fingerprints(days).items() if d in valid}
    observed = _observed(instance, source.name, set(current))
    return [
        dg.AssetObservation(
            asset_key=dg.AssetKey(["sources", source.name]),
            partition=day,
            tags={DATA_VERSION_TAG: version},
        )
        for day, version in current.items()
        if observed.get(day, (0, ""))[1] != version
    ]


def landed_version(
    instance: dg.DagsterInstance, source: dg.AssetKey, landed: dg.AssetKey
) -> str | None:
    """The data version last observed of an unpartitioned ``source`` if ``landed`` was
    materialized after that observation (its files are in the lake), else None."""
    observed = instance.fetch_observations(dg.AssetRecordsFilter(asset_key=source), limit=1)
    built = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=landed), limit=1)
    if not observed.records or not built.records:
        return None
    observation = observed.records[0]
    if built.records[0].storage_id < observation.storage_id:
        return None
    return observation.asset_observation.data_version


def stale_days(
    instance: dg.DagsterInstance, sources: Sequence[EventFolderSource]
) -> dict[str, str]:
    """Received dates whose lake partitions are behind their landed files, each with a hash
    of its files now.

    A day is stale when its files differ from the data version Dagster last observed for it
    (new, rewritten or never observed), or when that observation is newer than the day's
    last lake materialization (observed, but its landing did not finish). A lake asset
    records the version of the days it lands before it reads them, from whichever path
    launched it, so the command line, the sensor and the UI all answer "what is new" from
    the same observations. An unchanged landing zone costs a listing and two queries per
    source.
    """
    stale: dict[str, list[str]] = {}
    for source in sources:
        current = source.fingerprints()
        observed = _observed(instance, source.name, set(current))
        landed = _latest_per_day(
            instance.fetch_materializations, dg.AssetKey(["lake", source.name]), set(current)
        )
        for day, print_ in current.items():
            storage_id, version = observed.get(day, (0, ""))
            built = landed[day].storage_id if day in landed else 0
            if version != print_ or built < storage_id:
                stale.setdefault(day, []).append(f"{source.folder}:{print_}")
    return {day: fingerprint(sorted(parts)) for day, parts in sorted(stale.items())}


def contiguous_ranges(days: Iterable[str], partition_keys: list[str]) -> list[tuple[str, str]]:
    """Runs of consecutive partitions among ``days`` (all of them partition keys)."""
    position = {key: i for i, key in enumerate(partition_keys)}
    ranges: list[tuple[str, str]] = []
    for day in sorted(days, key=position.__getitem__):
        if ranges and position[day] == position[ranges[-1][1]] + 1:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def range_tags(first: str, last: str) -> dict[str, str]:
    """The tags of one run over the received dates ``first`` to ``last`` (the lake assets'
    single-run backfill policy reads the whole range in one run)."""
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


def plan_ingest_runs(
    stale: dict[str, str], partition_keys: list[str]
) -> tuple[list[dg.RunRequest], list[str]]:
    """One run request per contiguous range of stale days, keyed by the days' fingerprints
    (the same files never start a second run); and the stale days outside the partitions."""
    valid = set(partition_keys)
    outside = sorted(day for day in stale if day not in valid)
    requests = []
    for first, last in contiguous_ranges((d for d in stale if d in valid), partition_keys):
        days = partition_keys[partition_keys.index(first) : partition_keys.index(last) + 1]
        key = fingerprint([stale[day] for day in days])
        requests.append(
            dg.RunRequest(run_key=f"{first}..{last}:{key}", tags=range_tags(first, last))
        )
    return requests, outside


@dg.sensor(
    job_name="ingest_events",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lands the events (Segment, GA4, Mixpanel, ESP) of every received date whose "
    "files are new or changed since its lake partition was built.",
)
def landing_sensor(
    context: dg.SensorEvaluationContext,
    web_events_source: EventFolderSource,
    esp_events_source: EventFolderSource,
    ga4_events_source: EventFolderSource,
    mixpanel_events_source: EventFolderSource,
) -> dg.SensorResult | dg.SkipReason:
    sources = [web_events_source, esp_events_source, ga4_events_source, mixpanel_events_source]
    stale = stale_days(context.instance, sources)
    requests, outside = plan_ingest_runs(stale, received_date_partitions.get_partition_keys())
    if outside:
        context.log.warning(
            f"received dates before the first event partition ({START_DATE_VARIABLE} or the "
            f"oldest landed day when the code location loaded): {outside}; reload the code "
            "location to land them"
        )
    if not requests:
        return dg.SkipReason("every landed received date is in the lake")
    return dg.SensorResult(run_requests=requests)


# The ends of runs: a failed run alerts, and any run may have evaluated checks that failed.
RUN_ENDS = (
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.RUN_CANCELED,
)
PAGE = 1000


def new_alert_records(
    instance: dg.DagsterInstance, cursor: int
) -> tuple[list[tuple[int, Alert]], int]:
    """Alerts from events stored after ``cursor``, in order, and the new cursor.

    Freshness changes and the ends of runs are read by storage id: both are kept in the
    instance's cross-run index (also on the local SQLite storage, which keeps each run's other
    events in a file of its own). A run's failed checks are read from that run's events when it
    ends, and carry its end's storage id. When a query fills its page, the cursor stops at the
    earliest such page's end, so the next tick reads on from there.
    """
    entries: list[tuple[int, dg.EventLogEntry]] = []
    full_pages: list[int] = []  # the last storage id of each query that filled its page
    freshness = instance.get_event_records(
        dg.EventRecordsFilter(
            event_type=dg.DagsterEventType.FRESHNESS_STATE_CHANGE, after_cursor=cursor
        ),
        limit=PAGE,
        ascending=True,
    )
    entries += [(record.storage_id, record.event_log_entry) for record in freshness]
    if len(freshness) == PAGE:
        full_pages.append(freshness[-1].storage_id)
    for event_type in RUN_ENDS:
        ends = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=cursor),
            limit=PAGE,
            ascending=True,
        ).records
        if len(ends) == PAGE:
            full_pages.append(ends[-1].storage_id)
        for record in ends:
            checks = instance.all_logs(
                record.event_log_entry.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
            )
            entries += [(record.storage_id, entry) for entry in checks]
            entries.append((record.storage_id, record.event_log_entry))
    newest = min(full_pages) if full_pages else max([cursor, *(sid for sid, _ in entries)])
    found = [
        (storage_id, alert)
        for storage_id, entry in entries
        if storage_id <= newest and (alert := alert_from_entry(entry)) is not None
    ]
    return sorted(found, key=lambda pair: pair[0]), newest


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends each freshness WARN/FAIL, failed check and failed run once to the "
    "alert webhook (INBOXGRAPH_ALERT_WEBHOOK_URL) and to the log.",
)
def alerts_sensor(
    context: dg.SensorEvaluationContext, alert_webhook: AlertWebhook
) -> dg.SkipReason:
    cursor = int(context.cursor or 0)
    alerts, newest = new_alert_records(context.instance, cursor)
    for storage_id, alert in alerts:
        try:
            alert_webhook.send(alert)
        except OSError as exc:
            # Stop here: the cursor stays before this alert, so it is sent on the next tick.
            context.update_cursor(str(storage_id - 1))
            return dg.SkipReason(f"alert webhook unreachable ({exc}); will retry")
    context.update_cursor(str(newest))
    return dg.SkipReason(f"{len(alerts)} alert(s) sent")
