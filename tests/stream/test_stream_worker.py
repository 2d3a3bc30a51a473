"""Kafka -> lake, exactly once in effect, with a real broker (Tansu) started by the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest
from confluent_kafka import Producer

from inboxgraph.collector import CollectorSettings, KafkaSink, build_app
from inboxgraph.resources.lake import LakeResource
from inboxgraph.settings import Paths
from inboxgraph.stream import StreamWorker
from inboxgraph.stream_files import STREAM_SOURCE, parse_batch_file
from tests.local_kafka import create_topic, tansu_broker
from tests.stream.server import serve

pytestmark = pytest.mark.e2e
KEY = "stream-key"


@pytest.fixture(scope="module")
def broker() -> Iterator[str]:
    with tansu_broker() as bootstrap:
        yield bootstrap


def _landed(paths: Paths) -> pl.DataFrame:
    scan = LakeResource(url=paths.lake_url).scan("raw", STREAM_SOURCE)
    assert scan is not None, "nothing landed"
    return scan.select("message_id", "_source_file", "_line").collect()


def test_segment_client_events_reach_the_lake_exactly_once(
    broker: str, platform_home: Paths
) -> None:
    import segment.analytics as analytics

    topic = "events-client"
    create_topic(broker, topic, partitions=3)
    sink = KafkaSink(broker, topic)
    with serve(build_app(sink, CollectorSettings(write_key=KEY))) as url:
        client = analytics.Client(KEY, host=url, sync_mode=True, max_retries=1)
        for n in range(300):
            client.track(
                anonymous_id=f"anon-{n % 40}",
                event="Product Viewed",
                properties={"product_id": f"P{n:04d}"},
            )
        client.identify("user-7", {"email": "seven@example.com"}, anonymous_id="anon-7")
        client.flush()
    sink.close()
    reports = []
    worker = StreamWorker(
        broker,
        topic,
        LakeResource(url=platform_home.lake_url),
        group_id="client-test",
        on_batch=reports.append,
    )
    landed = worker.run(idle_exit_seconds=5)
    assert landed == 301
    rows = _landed(platform_home)
    assert rows.height == 301 and rows["message_id"].n_unique() == 301
    assert {r.partition for r in reports} == {0, 1, 2}
    assert all(r.lag == 0 for r in reports[-3:])
    names = [
        parse_batch_file(p.name)
        for p in Path(platform_home.lake_url).rglob(f"{topic}-*.data.parquet")
    ]
    assert names and all(n is not None and n[0] == topic for n in names)


def _produce(bootstrap: str, topic: str, count: int, done: threading.Event) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )
    for n in range(count):
        message = {
            "type": "track",
            "messageId": f"m-{n:07d}",
            "anonymousId": f"a-{n % 997}",
            "event": "Product Viewed",
            "timestamp": "2026-11-28T10:00:00.000Z",
            "receivedAt": "2026-11-28T10:00:01.000Z",
            "properties": {"n": n},
        }
        producer.produce(topic, key=message["anonymousId"], value=orjson.dumps(message))
        if n % 1000 == 0:
            producer.poll(0)
            time.sleep(0.02)
    producer.flush(60)
    done.set()


def _worker(topic: str, idle: int = 6, log: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "inboxgraph.cli",
            "stream",
            "--no-report",
            "--max-batch",
            "2000",
            "--exit-when-idle",
            str(idle),
        ],
        env={**os.environ, "INBOXGRAPH_EVENTS_TOPIC": topic},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL if log is None else log.open("ab"),
    )


def test_a_worker_killed_repeatedly_lands_every_event_exactly_once(
    broker: str, platform_home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = "events-sigkill"
    total = 100_000
    create_topic(broker, topic, partitions=3)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker)
    done = threading.Event()
    producer = threading.Thread(target=_produce, args=(broker, topic, total, done))
    producer.start()
    lake = Path(platform_home.lake_url)

    def files() -> int:
        return len(list(lake.rglob(f"{topic}-*.data.parquet")))

    landed_at_kill = []
    for _ in range(2):
        worker = _worker(topic)
        before = files()
        deadline = time.monotonic() + 120
        while files() == before and time.monotonic() < deadline:
            time.sleep(0.05)
        # Kill it in the middle of its work: it has landed batches and is landing more.
        time.sleep(0.4)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        landed_at_kill.append(files())
    assert all(n > 0 for n in landed_at_kill)
    producer.join(timeout=300)
    assert done.is_set(), "the producer did not finish"
    final = _worker(topic)
    assert final.wait(timeout=600) == 0
    rows = _landed(platform_home)
    assert rows["message_id"].n_unique() == total
    assert rows.height == total, f"{rows.height - total} duplicates"
    offsets = rows.group_by("_source_file").agg(pl.col("_line").n_unique(), pl.len())
    assert (offsets["_line"] == offsets["len"]).all(), "an offset landed twice"


def _assignments(log: Path) -> list[set[int]]:
    """Every partition assignment a worker logged, in order."""
    found = []
    for line in log.read_text().splitlines():
        if "assigned partitions [" in line:
            listed = line.split("assigned partitions [", 1)[1].split("]", 1)[0]
            found.append({int(p) for p in listed.split(",") if p.strip()})
    return found


def _tail(log: Path, lines: int = 15) -> str:
    return f"--- {log.name}\n" + "\n".join(log.read_text().splitlines()[-lines:])


def test_two_workers_split_the_partitions_and_the_survivor_takes_over(
    broker: str, platform_home: Paths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    topic = "events-group"
    total = 60_000
    create_topic(broker, topic, partitions=4)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", broker)
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    # Idle exit well beyond the session timeout (10 s) and the rebalance after it (about 5 s
    # here), so a survivor whose own partitions are drained still waits for the take-over.
    workers = [_worker(topic, idle=30, log=log) for log in logs]
    deadline = time.monotonic() + 120
    while True:
        latest = [(_assignments(log) or [set()])[-1] for log in logs]
        if all(latest) and not latest[0] & latest[1] and latest[0] | latest[1] == set(range(4)):
            break
        for worker, log in zip(workers, logs, strict=True):
            assert worker.poll() is None, f"a worker stopped early:\n{_tail(log)}"
        assert time.monotonic() < deadline, (
            f"the workers never split the partitions: {latest}\n"
            + "\n".join(_tail(log) for log in logs)
        )
        time.sleep(0.2)

    done = threading.Event()
    producer = threading.Thread(target=_produce, args=(broker, topic, total, done))
    producer.start()
    lake = Path(platform_home.lake_url)
    victim, survivor = workers
    victim_partitions = latest[0]
    deadline = time.monotonic() + 120
    while not any(
        (parsed := parse_batch_file(f.name)) and parsed[1] in victim_partitions
        for f in lake.rglob(f"{topic}-*.data.parquet")
    ):
        assert time.monotonic() < deadline, "the first worker landed nothing"
        time.sleep(0.05)
    time.sleep(0.3)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    producer.join(timeout=300)
    assert done.is_set(), "the producer did not finish"
    assert survivor.wait(timeout=600) == 0
    assert _assignments(logs[1])[-1] == set(range(4)), "the survivor never took over"
    rows = _landed(platform_home)
    assert rows["message_id"].n_unique() == total
    assert rows.height == total, f"{rows.height - total} duplicates"
    by_partition = rows.group_by("_source_file").agg(pl.col("_line").n_unique(), pl.len())
    assert by_partition.height == 4
    assert (by_partition["_line"] == by_partition["len"]).all(), "an offset landed twice"
