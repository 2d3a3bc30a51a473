"""Sensors: new or changed landing folders trigger the events job for that received date."""

import hashlib
import json

import dagster as dg

from inboxgraph.resources.sources import EventFolderSource


def folder_fingerprints(sources: list[EventFolderSource]) -> dict[str, str]:
    """Per received date, a hash of every landed file's name, size and modification time."""
    listing: dict[str, list[str]] = {}
    for source in sources:
        for day in source.partitions():
            for path in source.files(day):
                stat = path.stat()
                listing.setdefault(day, []).append(
                    f"{source.folder}/{path.name}:{stat.st_size}:{stat.st_mtime_ns}"
                )
    return {
        day: hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]
        for day, entries in listing.items()
    }


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
