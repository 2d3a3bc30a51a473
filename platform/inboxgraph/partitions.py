"""Partitioning shared by the lake assets, sensors and the command line."""

from __future__ import annotations

import dagster as dg

RECEIVED_DATE = "received_date"


def received_date_of(path: object) -> str | None:
    """The received date of a lake file, from its ``received_date=YYYY-MM-DD`` folder."""
    prefix = f"{RECEIVED_DATE}="
    for part in str(path).replace("\\", "/").split("/"):
        if part.startswith(prefix):
            return part.removeprefix(prefix)
    return None


# Event sources land one folder per received day; a day is a partition.
received_date_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)
