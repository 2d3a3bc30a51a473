"""How the stream worker cuts a poll into files and commits it, without a broker."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

import orjson
import polars as pl
from confluent_kafka import Message, TopicPartition

from inboxgraph.resources.lake import LakeResource
from inboxgraph.settings import Paths
from inboxgraph.storage import STALE_AFTER_SECONDS
from inboxgraph.stream import StreamWorker
from inboxgraph.stream_files import MIN_RANGE, STREAM_SOURCE, batch_file_name, parse_batch_file

TOPIC = "events-unit"
RECEIVED_MS = int(datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp() * 1000)


class RecordingConsumer:
    """Stands in for the Kafka consumer: records commits, reports a fixed high watermark."""

    def __init__(self, high: int) -> None:
        self.high = high
        self.commits: list[list[tuple[int, int]]] = []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous is False
        self.commits.append([(tp.partition, tp.offset) for tp in offsets])

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float, cached: bool):
        return 0, self.high


def _messages(partition: int, first: int, count: int) -> list[Message]:
    return [
        Message(
            topic=TOPIC,
            partition=partition,
            offset=offset,
            value=orjson.dumps(
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "anonymousId": f"anon-{offset % 50}",
                    "messageId": f"p{partition}-{offset}",
                    "timestamp": "2026-11-20T08:59:00Z",
                }
            ),
            timestamp=(1, RECEIVED_MS),
        )
        for offset in range(first, first + count)
    ]


def test_a_poll_lands_in_contiguous_offset_ranges_and_commits_once_per_partition(
    platform_home: Paths,
) -> None:
    lake = LakeResource(url=platform_home.lake_url)
    worker = StreamWorker("127.0.0.1:1", TOPIC, lake)
    worker.consumer.close()
    worker.consumer = RecordingConsumer(high=20_000)  # type: ignore[assignment]
    poll = _messages(0, 100, 3 * MIN_RANGE) + _messages(1, 0, MIN_RANGE // 2)

    reports = worker.files.land(poll)
    worker.commit(reports)

    ranges = sorted((r.partition, r.first_offset, r.last_offset) for r in reports)
    size = -(-len(poll) // 2)  # an equal share per writer thread
    assert ranges == [
        (0, 100, 100 + size - 1),
        (0, 100 + size, 100 + 3 * MIN_RANGE - 1),
        (1, 0, MIN_RANGE // 2 - 1),
    ]
    files = sorted(lake.table_dir("raw", STREAM_SOURCE).rglob(f"{TOPIC}-*.data.parquet"))
    assert sorted(parse_batch_file(f.name)[1:] for f in files) == ranges
    landed = pl.read_parquet(files, columns=["message_id"])
    assert landed.height == len(poll) and landed["message_id"].n_unique() == len(poll)
    assert worker.consumer.commits == [[(0, 100 + 3 * MIN_RANGE), (1, MIN_RANGE // 2)]]
    assert worker.landed == len(poll)
    assert {r.lag for r in reports if r.partition == 0} == {20_000 - (100 + 3 * MIN_RANGE)}
    worker.files.close()


def test_a_small_poll_is_one_file(platform_home: Paths) -> None:
    lake = LakeResource(url=platform_home.lake_url)
    worker = StreamWorker("127.0.0.1:1", TOPIC, lake)
    worker.consumer.close()

    reports = worker.files.land(_messages(3, 7, 10))

    assert [(r.partition, r.first_offset, r.last_offset, r.landed) for r in reports] == [
        (3, 7, 16, 10)
    ]
    worker.files.close()


def test_a_reassigned_partition_loses_what_a_dead_worker_left_of_it(platform_home: Paths) -> None:
    lake = LakeResource(url=platform_home.lake_url)
    worker = StreamWorker("127.0.0.1:1", TOPIC, lake)
    worker.consumer.close()
    worker.files.land(_messages(3, 0, 10))  # committed up to 10
    worker.files.land(_messages(3, 10, 10))  # landed, never committed
    day = lake.partition_path("raw", STREAM_SOURCE, {"received_date": "2026-11-20"}).parent
    old = time.time() - STALE_AFTER_SECONDS - 60
    leftovers = {}
    for name, partition, age in (
        ("dead", 3, old),  # a write that died
        ("finishing", 3, 0),  # the previous holder's write, still finishing
        ("other", 4, old),  # another partition's
    ):
        path = day / f".{batch_file_name(TOPIC, partition, 20, 29)}.{name}.tmp"
        path.write_bytes(b"half")
        if age:
            os.utime(path, (age, age))
        leftovers[name] = path

    assert worker.files.discard_uncommitted(3, committed=10) == 1

    files = sorted(parse_batch_file(f.name)[1:] for f in day.glob(f"{TOPIC}-*.data.parquet"))
    assert files == [(3, 0, 9)]
    assert {name for name, path in leftovers.items() if path.exists()} == {"finishing", "other"}
    worker.files.close()
