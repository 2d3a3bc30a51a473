"""Sensors: new or changed landing folders trigger the events job for that received date."""

import json

import dagster as dg

from inboxgraph.alerts import ALERT_EVENT_TYPES, Alert, AlertWebhook, alert_from_entry
from inboxgraph.resources.sources import EventFolderSource, fingerprint


def folder_fingerprints(sources: list[EventFolderSource]) -> dict[str, str]:
    """Per received date, a hash of every landed file's name, size and modification time."""
    listing: dict[str, list[str]] = {}
    for source in sources:
        for day, stamps in source.stamps().items():
            listing.setdefault(day, []).extend(stamps)
    return {day: fingerprint(entries) for day, entries in listing.items()}


def plan_ingest_runs(
    cursor: str | None, observed: dict[str, str], valid_days: set[str] | None = None
) -> tuple[list[dg.RunRequest], str]:
    """Run requests for days whose landed files changed since the cursor; the new cursor."""
    previous: dict[str, str] = json.loads(cursor) if cursor else {}
    requests = [
        dg.RunRequest(run_key=f"{day}:{fingerprint}", partition_key=day)
        for day, fingerprint in sorted(observed.items())
        if previous.get(day) != fingerprint and (valid_days is None or day in valid_days)
    ]
    return requests, json.dumps(observed, sort_keys=True)


@dg.sensor(
    job_name="ingest_events",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Lands web and ESP events of every received date whose files changed.",
)
def landing_sensor(
    context: dg.SensorEvaluationContext,
    web_events_source: EventFolderSource,
    esp_events_source: EventFolderSource,
) -> dg.SensorResult:
    observed = folder_fingerprints([web_events_source, esp_events_source])
    requests, cursor = plan_ingest_runs(context.cursor, observed)
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def new_alert_records(
    instance: dg.DagsterInstance, cursor: int
) -> tuple[list[tuple[int, Alert]], int]:
    """Alerts from events stored after ``cursor``, in order, and the new cursor."""
    found: list[tuple[int, Alert]] = []
    newest = cursor
    for event_type in ALERT_EVENT_TYPES:
        # The event log storage's query, by storage id (the instance's deprecated wrapper of it
        # warns on run events; fetch_run_status_changes pages by an opaque cursor instead).
        records = instance.event_log_storage.get_event_records(
            dg.EventRecordsFilter(event_type=event_type, after_cursor=cursor),
            limit=1000,
            ascending=True,
        )
        for record in records:
            newest = max(newest, record.storage_id)
            alert = alert_from_entry(record.event_log_entry)
            if alert is not None:
                found.append((record.storage_id, alert))
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
