"""The stream worker's files: each consumed batch written to the lake as Parquet, one file per
contiguous offset range of a partition and received date, named by topic, partition and offset
range (``lake/raw/web_events_stream/received_date=<day>/``), and the files of offsets that were
never committed found again and removed.

The worker (:mod:`inboxgraph.stream`) owns the consumer and the commits; this module only knows
the lake.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from confluent_kafka import Message

from inboxgraph.privacy import drop_tombstoned, read_tombstones
from inboxgraph.resources.lake import LakeResource
from inboxgraph.storage import is_stale
from inboxgraph.transforms import web_events
from inboxgraph.transforms.common import split_quarantine
from inboxgraph.transforms.sql import limit_threads

logger = logging.getLogger("inboxgraph.stream")

STREAM_SOURCE = "web_events_stream"
# Offset ranges of one poll landed side by side.
WRITER_THREADS = 2
# Fewest messages worth a file of their own when a poll is cut between the writer threads.
MIN_RANGE = 5_000


def batch_file_name(topic: str, partition: int, first: int, last: int) -> str:
    return f"{topic}-{partition:04d}-{first:020d}-{last:020d}.data.parquet"


def parse_batch_file(name: str) -> tuple[str, int, int, int] | None:
    stem = name.removesuffix(".data.parquet")
    parts = stem.rsplit("-", 3)
    if len(parts) != 4 or not all(p.isdigit() for p in parts[1:]):
        return None
    return parts[0], int(parts[1]), int(parts[2]), int(parts[3])


@dataclass
class BatchReport:
    topic: str
    partition: int
    first_offset: int
    last_offset: int
    landed: int
    quarantined: int
    erased: int
    lag: int
    paths: list[str] = field(default_factory=list)


class BatchFiles:
    """Consumed messages to durable lake files (not yet committed), and back out again."""

    def __init__(self, topic: str, lake: LakeResource) -> None:
        self.topic = topic
        self.lake = lake
        self._writers = ThreadPoolExecutor(
            max_workers=WRITER_THREADS,
            thread_name_prefix="inboxgraph-writer",
            initializer=limit_threads,
            initargs=(1,),
        )

    def close(self) -> None:
        self._writers.shutdown()

    def _files(self, zone: str, partition: int) -> tuple[list[tuple[Path, int]], list[Path]]:
        """The partition's batch files in ``zone`` (with their first offsets), and the hidden
        temporaries of writes of them, found in one walk of the table."""
        prefix = f"{self.topic}-{partition:04d}-"
        batches, temporaries = [], []
        for path in self.lake.table_dir(zone, STREAM_SOURCE).rglob(f"*{prefix}*"):
            if path.name.startswith(f".{prefix}") and path.name.endswith(".tmp"):
                temporaries.append(path)
            elif path.name.startswith(prefix) and path.name.endswith(".data.parquet"):
                parsed = parse_batch_file(path.name)
                if parsed and parsed[0] == self.topic and parsed[1] == partition:
                    batches.append((path, parsed[2]))
        return batches, temporaries

    def discard_uncommitted(self, partition: int, committed: int) -> int:
        """Remove files a dead worker wrote past the committed offset; returns how many.

        The hidden temporaries of writes it did not finish go too, once stale (a younger one
        may be a write of the worker that held the partition until now, still finishing).
        """
        removed = 0
        for zone in ("raw", "quarantine"):
            batches, temporaries = self._files(zone, partition)
            for path, first in batches:
                if first >= committed:
                    path.unlink(missing_ok=True)
                    removed += 1
            for path in temporaries:
                if is_stale(path):
                    path.unlink(missing_ok=True)
        return removed

    def write(self, partition: int, messages: list[Message]) -> BatchReport:
        first, last = messages[0].offset(), messages[-1].offset()
        name = batch_file_name(self.topic, partition, first, last)
        frame = (
            pl.DataFrame(
                {
                    "_raw": [m.value() for m in messages],
                    "_line": [m.offset() for m in messages],
                    "_received": [m.timestamp()[1] for m in messages],
                },
                schema={"_raw": pl.Binary, "_line": pl.Int64, "_received": pl.Int64},
            )
            .with_columns(
                pl.col("_raw").cast(pl.String),
                pl.lit(f"kafka://{self.topic}/{partition}").alias("_source_file"),
                pl.from_epoch("_received", time_unit="ms").dt.date().cast(pl.String),
            )
            .select("_raw", "_source_file", "_line", "_received")
        )
        tombstones = read_tombstones(self.lake)
        report = BatchReport(self.topic, partition, first, last, 0, 0, 0, 0)
        days = frame.get_column("_received").unique(maintain_order=True).to_list()
        # Usually one day: the whole frame then (splitting it by day copies every row).
        by_day = (
            [((days[0],), frame)]
            if len(days) == 1
            else frame.group_by("_received", maintain_order=True)
        )
        for (day,), lines in by_day:
            prepared = web_events.prepare(
                lines.drop("_received"), datetime.fromisoformat(day).date()
            ).collect()
            prepared, erased = drop_tombstoned(prepared, "web_events", tombstones)
            good, bad = split_quarantine(prepared.lazy(), list(web_events.LANDED_COLUMNS))
            folder = {"received_date": day}
            for zone, rows in (("raw", good), ("quarantine", bad)):
                if rows.height or zone == "raw":
                    target = self.lake.partition_path(zone, STREAM_SOURCE, folder).with_name(name)
                    self.lake.write_file(target, rows)
                    report.paths.append(str(target))
            report.landed += good.height
            report.quarantined += bad.height
            report.erased += erased
        return report

    def land(self, messages: list[Message]) -> list[BatchReport]:
        """Write one poll's messages to the lake (durable files, not yet committed).

        Each partition's messages are cut into contiguous offset ranges of about an equal
        share of the poll per writer thread (a poll often holds one partition only), and the
        ranges land side by side: DuckDB and polars release the GIL while they work.
        """
        by_partition: dict[int, list[Message]] = {}
        for message in messages:
            if message.error():
                logger.warning(f"consumer error: {message.error()}")
                continue
            by_partition.setdefault(message.partition(), []).append(message)
        total = sum(len(batch) for batch in by_partition.values())
        size = max(MIN_RANGE, -(-total // WRITER_THREADS))
        ranges = [
            (partition, batch[start : start + size])
            for partition, batch in sorted(by_partition.items())
            for start in range(0, len(batch), size)
        ]
        if len(ranges) == 1:
            return [self.write(*ranges[0])]
        return list(self._writers.map(lambda piece: self.write(*piece), ranges))

    def warm_up(self) -> None:
        """Parse one message before consuming, so the first batch pays no start-up cost."""
        sample = pl.DataFrame(
            {
                "_raw": ['{"type":"track","event":"x","anonymousId":"a","messageId":"m"}'],
                "_source_file": ["warm-up"],
                "_line": [0],
            }
        )
        list(
            self._writers.map(
                lambda _: web_events.prepare(sample, datetime.now(UTC).date()).collect(),
                range(WRITER_THREADS),
            )
        )
