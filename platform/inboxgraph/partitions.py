"""Time structure shared by the lake assets, sensors, schedule and the command line.

Partitions and schedules are part of the definitions' structure, which Dagster reads when it
loads the code location: their two settings are read then, not at run time."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

import dagster as dg

RECEIVED_DATE = "received_date"
START_DATE_VARIABLE = "INBOXGRAPH_EVENTS_START_DATE"
NIGHTLY_CRON_VARIABLE = "INBOXGRAPH_NIGHTLY_CRON"
DEFAULT_NIGHTLY_CRON = "0 2 * * *"
# The event sources landed per received date: each lake table's name and its landing folder.
EVENT_SOURCES = {
    "web_events": "web_events",
    "esp_events": "esp_events",
    "ga4_events": "ga4",
    "mixpanel_events": "mixpanel",
}
EVENT_FOLDERS = tuple(EVENT_SOURCES)
# The web analytics sources: one stream of page views, tracks and identities in the warehouse.
WEB_SOURCES = ("web_events", "ga4_events", "mixpanel_events")
# Marks the materialization Dagster records on every partition of a range run, beside which
# each partition gets its own: readers of a partition's figures skip it.
PARTITION_RANGE = "partition_range"


def received_date_of(path: object) -> str | None:
    """The received date of a lake file, from its ``received_date=YYYY-MM-DD`` folder."""
    prefix = f"{RECEIVED_DATE}="
    for part in str(path).replace("\\", "/").split("/"):
        if part.startswith(prefix):
            return part.removeprefix(prefix)
    return None


def first_landed_day() -> str | None:
    """The oldest received date with landed event files of any source, if any."""
    from inboxgraph.resources.sources import EventFolderSource

    days = [
        day
        for folder in EVENT_SOURCES.values()
        for day in EventFolderSource(folder=folder).partitions()[:1]
    ]
    return min(days, default=None)


def events_start_date(today: date | None = None) -> str:
    """The first event partition: INBOXGRAPH_EVENTS_START_DATE when set (the start a production
    backfill needs), else the oldest landed received date (or the first day the Mixpanel pull
    will save, when it is on), else today.

    Partitions are part of the definitions' structure, which Dagster reads when it loads the
    code location, so this is read then (a code location reloaded after older files landed
    shows their days).
    """
    configured = os.environ.get(START_DATE_VARIABLE, "").strip()
    if configured:
        try:
            return date.fromisoformat(configured).isoformat()
        except ValueError:
            raise ValueError(
                f"{START_DATE_VARIABLE}={configured!r} is not a date; use YYYY-MM-DD"
            ) from None
    today = today or datetime.now(UTC).date()
    days = [first_landed_day() or today.isoformat()]
    if os.environ.get("INBOXGRAPH_MIXPANEL_SECRET"):
        # The first day the Mixpanel pull saves is a received date to come.
        from inboxgraph.resources.mixpanel import first_day

        days.append(first_day(os.environ.get("INBOXGRAPH_MIXPANEL_START_DATE", ""), today))
    return min(days)


def nightly_cron() -> str:
    """When the nightly refresh runs (UTC): INBOXGRAPH_NIGHTLY_CRON, by default 02:00."""
    cron = os.environ.get(NIGHTLY_CRON_VARIABLE, "").strip() or DEFAULT_NIGHTLY_CRON
    if len(cron.split()) != 5:
        raise ValueError(
            f"{NIGHTLY_CRON_VARIABLE}={cron!r} is not a cron schedule of five fields "
            "(minute hour day month weekday)"
        )
    return cron


# Event sources land one folder per received day; a day is a partition, up to today's.
received_date_partitions = dg.DailyPartitionsDefinition(
    start_date=events_start_date(), end_offset=1
)
