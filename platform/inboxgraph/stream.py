"""The stream worker: Kafka -> lake, exactly once in effect.

It consumes the events topic in micro-batches, has each batch written as Parquet files
(:mod:`inboxgraph.stream_files`: one per contiguous offset range of a partition and received
date, named by topic, partition and offset range), and commits the offsets only after the
files are durable. When a partition is assigned, files starting at or after its committed
offset are left-overs of a worker that died before committing: they are removed and those
offsets are consumed again, so every event lands in exactly one file. Several workers share one
consumer group and split the topic's partitions.
"""

from __future__ import annotations

import gc
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException, Message, TopicPartition

from inboxgraph.resources.lake import LakeResource
from inboxgraph.stream_files import STREAM_SOURCE, BatchFiles, BatchReport
from inboxgraph.transforms import web_events
from inboxgraph.transforms.common import split_quarantine

logger = logging.getLogger("inboxgraph.stream")

GROUP_ID = "inboxgraph-stream"
# Consumed batches waiting for the lander thread.
PIPELINE_DEPTH = 2
# Most messages per micro-batch. A batch is also cut after ``max_wait_seconds``, so a large
# cap costs no latency when traffic is light; under load it spreads each file's fixed costs
# (query planning, fsync, commit) over more events.
DEFAULT_MAX_BATCH = 50_000
# Allocations between two young-generation collections while the worker runs (Python's
# default is 700).
GC_THRESHOLD = 200_000
# A micro-batch is consumed in slices this long at most, so batches the lander finished are
# committed (and reported) within this time instead of after the next batch fills.
COMMIT_INTERVAL_SECONDS = 0.05


class StreamWorker:
    """One member of the consumer group: consumes in micro-batches, hands each batch to a
    lander thread that writes it (:class:`BatchFiles`), and commits the offsets of the batches
    landed, in order; after a failed commit it rewinds to the committed offsets."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        lake: LakeResource,
        group_id: str = GROUP_ID,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_seconds: float = 0.5,
        on_batch: Callable[[BatchReport], None] | None = None,
    ) -> None:
        self.topic = topic
        self.lake = lake
        self.max_batch = max_batch
        self.max_wait = max_wait_seconds
        self.on_batch = on_batch
        self.running = True
        self.assigned_at: float | None = None
        self.landed = 0
        self.files = BatchFiles(topic, lake)
        self._pending: queue.Queue[list[Message] | None] = queue.Queue(maxsize=PIPELINE_DEPTH)
        self._landed: queue.Queue[list[BatchReport]] = queue.Queue()
        self._rewind = threading.Event()
        self._failure: BaseException | None = None
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap_servers,
                "group.id": group_id,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 100,
                "session.timeout.ms": 10_000,
                "heartbeat.interval.ms": 1_000,
                "partition.assignment.strategy": "range",
            }
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        committed = consumer.committed(partitions, timeout=30)
        for tp in committed:
            start = tp.offset if tp.offset != OFFSET_INVALID else 0
            removed = self.files.discard_uncommitted(tp.partition, start)
            if removed:
                logger.warning(
                    f"partition {tp.partition}: removed {removed} uncommitted "
                    f"file(s) from offset {start}"
                )
        self.assigned_at = time.monotonic()
        logger.info(f"assigned partitions {[tp.partition for tp in partitions]}")

    def _lag(self, partition: int, next_offset: int) -> int:
        _, high = self.consumer.get_watermark_offsets(
            TopicPartition(self.topic, partition), timeout=5, cached=True
        )
        return max(0, high - next_offset)

    def commit(self, reports: list[BatchReport]) -> None:
        """Commit the offsets of landed batches, then report them.

        On failure the batches' files are removed (the partition may belong to another worker
        by now) and the ``KafkaException`` propagates.
        """
        if not reports:
            return
        next_offsets: dict[int, int] = {}
        for report in reports:
            next_offsets[report.partition] = max(
                next_offsets.get(report.partition, 0), report.last_offset + 1
            )
        offsets = [TopicPartition(self.topic, p, o) for p, o in sorted(next_offsets.items())]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException:
            for report in reports:
                for path in report.paths:
                    Path(path).unlink(missing_ok=True)
            raise
        for report in reports:
            report.lag = self._lag(report.partition, next_offsets[report.partition])
            self.landed += report.landed
            if self.on_batch is not None:
                self.on_batch(report)

    def process(self, messages: list[Message]) -> list[BatchReport]:
        """Land one poll's messages, then commit their offsets; returns what was landed."""
        reports = self.files.land(messages)
        self.commit(reports)
        return reports

    def run(self, idle_exit_seconds: float | None = None) -> int:
        """Consume until stopped (SIGTERM/SIGINT), or idle that long; returns events landed.

        Consuming and landing overlap: while a lander thread writes one batch's files, this
        thread fetches the next batch and commits the batches already landed (librdkafka
        serves commits on the consuming thread). At most ``PIPELINE_DEPTH`` batches wait to be
        landed; they are landed and committed in the order they were consumed. Before
        partitions are revoked, every waiting batch is landed and committed. If a commit
        fails, the batches behind it are dropped and the consumer rewinds to the committed
        offsets, so nothing is skipped and nothing lands twice.
        """
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stop())
        # Every consumed message is a tracked Python object and up to PIPELINE_DEPTH batches
        # are alive at once: at the default thresholds the cyclic collector walks them all
        # again and again, which took a third of the consuming thread's time. Messages
        # form no cycles, so collections are made rarer while the worker runs.
        thresholds = gc.get_threshold()
        gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self.files.warm_up()
        lander = threading.Thread(target=self._land_loop, name="inboxgraph-lander", daemon=True)
        lander.start()
        last_message = None
        try:
            while self.running and self._failure is None:
                messages = self._next_batch()
                if not messages:
                    # Idle time counts from the assignment (joining a group takes a while).
                    since = last_message or self.assigned_at
                    if (
                        idle_exit_seconds is not None
                        and since is not None
                        and self._pending.unfinished_tasks == 0
                        and (time.monotonic() - since > idle_exit_seconds)
                    ):
                        break
                    continue
                last_message = time.monotonic()
                self._pending.put(messages)
            if self._failure is None:
                self._pending.join()
                self._commit_landed()
        finally:
            self._pending.put(None)
            lander.join()
            self.files.close()
            self.consumer.close()
            gc.set_threshold(*thresholds)
        if self._failure is not None:
            raise self._failure
        return self.landed

    def _next_batch(self) -> list[Message]:
        """Up to ``max_batch`` messages within ``max_wait``, committing landed batches meanwhile.

        After a failed commit the consumer rewinds, so what this batch had gathered is dropped
        (it is consumed again from the committed offsets).
        """
        deadline = time.monotonic() + self.max_wait
        messages: list[Message] = []
        while len(messages) < self.max_batch and self.running:
            if not self._commit_landed():
                return []
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            messages.extend(
                self.consumer.consume(
                    self.max_batch - len(messages), min(remaining, COMMIT_INTERVAL_SECONDS)
                )
            )
        return messages

    def _land_loop(self) -> None:
        while True:
            messages = self._pending.get()
            try:
                if messages is None:
                    return
                if self._rewind.is_set() or self._failure is not None:
                    continue  # consumed again after the rewind
                self._landed.put(self.files.land(messages))
            except BaseException as exc:  # noqa: BLE001 - re-raised by run()
                logger.exception("landing a batch failed; the worker stops")
                self._failure = exc
            finally:
                self._pending.task_done()

    def _commit_landed(self) -> bool:
        """Commit (in order) every batch the lander has finished; rewind if a commit fails.

        Returns False after a rewind.
        """
        while True:
            try:
                reports = self._landed.get_nowait()
            except queue.Empty:
                return True
            try:
                self.commit(reports)
            except KafkaException as exc:
                logger.warning(f"commit failed, rewinding to the committed offsets: {exc}")
                self._rewind_to_committed()
                return False

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Land and commit what was consumed before the partitions go to another worker.
        self._pending.join()
        self._commit_landed()
        logger.info(f"revoked partitions {[tp.partition for tp in partitions]}")

    def _rewind_to_committed(self) -> None:
        self._rewind.set()
        self._pending.join()  # the lander drops every waiting batch while the flag is set
        while not self._landed.empty():  # landed after the failed batch, never committed
            for report in self._landed.get_nowait():
                for path in report.paths:
                    Path(path).unlink(missing_ok=True)
        assignment = self.consumer.assignment()
        if assignment:
            for tp in self.consumer.committed(assignment, timeout=30):
                start = tp.offset if tp.offset != OFFSET_INVALID else 0
                self.files.discard_uncommitted(tp.partition, start)
                self.consumer.seek(TopicPartition(self.topic, tp.partition, start))
                logger.warning(f"partition {tp.partition}: consuming again from offset {start}")
        self._rewind.clear()

    def stop(self) -> None:
        self.running = False


def dagster_reporter() -> Callable[[BatchReport], None]:
    """Report each landed batch as a materialization of ``lake/web_events_stream``."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    key = dg.AssetKey(["lake", STREAM_SOURCE])

    def report(batch: BatchReport) -> None:
        try:
            instance.report_runless_asset_event(
                dg.AssetMaterialization(
                    asset_key=key,
                    metadata={
                        "dagster/row_count": batch.landed,
                        "rows_landed": batch.landed,
                        "rows_quarantined": batch.quarantined,
                        "rows_erased": batch.erased,
                        "rows_in": batch.landed + batch.quarantined + batch.erased,
                        "topic": batch.topic,
                        "partition": batch.partition,
                        "offsets": f"{batch.first_offset}..{batch.last_offset}",
                        "consumer_lag": batch.lag,
                        "paths": dg.MetadataValue.json(batch.paths),
                    },
                )
            )
        except Exception as exc:  # noqa: BLE001 - reporting must never stop landing
            logger.warning(f"could not report the batch to Dagster: {exc}")
        logger.info(
            f"partition {batch.partition} offsets {batch.first_offset}..{batch.last_offset}"
            f": {batch.landed} landed, {batch.quarantined} quarantined, lag {batch.lag}"
        )

    return report


def ensure_stream_table(lake: LakeResource) -> None:
    """An empty, typed file so the stream table exists (and reads) before any event lands."""
    if lake.files("raw", STREAM_SOURCE):
        return
    empty = pl.DataFrame(schema={"_raw": pl.String, "_source_file": pl.String, "_line": pl.Int64})
    good, _ = split_quarantine(
        web_events.prepare(empty, datetime.now(UTC).date()), list(web_events.LANDED_COLUMNS)
    )
    target = lake.url_of(
        "raw", STREAM_SOURCE, {"received_date": "1970-01-01"}, "_schema.data.parquet"
    )
    lake.write_file(target, good)
