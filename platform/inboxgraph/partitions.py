"""Partitioning shared by the lake assets, sensors and the command line."""

from __future__ import annotations

import dagster as dg

RECEIVED_DATE = "received_date"

# Event sources land one folder per received day; a day is a partition.
received_date_partitions = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_offset=1)
