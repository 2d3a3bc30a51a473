"""Real-time path benchmarks, measured in one run on a local Tansu broker.

1. Collector throughput: events/s through ``POST /v1/batch`` (100 events a request, 4 client
   threads) into Kafka, every request answered 200 only once Kafka acknowledged it.
   Target: at least 5,000 events/s.
2. Stream worker throughput against the floor, a bare confluent-kafka consume loop over the same
   topic, both timed from their partitions' assignment to the last message landed (or read);
   three alternated rounds, the median of each. Target: at least 50% of the floor.
3. Latency: from the collector's 200 to the event being visible in
   ``marts.customer_profiles_live``, with the stream worker running (p95; target at most 5 s).

    python bench/stream.py [--events 500000] [--rounds 3] [--latency-samples 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import orjson
import requests
from confluent_kafka import Consumer

from inboxgraph.generate.writer import GenerateOptions, generate_landing
from inboxgraph.resources.lake import LakeResource
from inboxgraph.runner import run_pipeline
from inboxgraph.settings import ensure_environment
from inboxgraph.stream import StreamWorker

# The tests' local broker (tests/local_kafka.py), from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.local_kafka import create_topic, free_port, tansu_broker  # noqa: E402

KEY = "bench-key"


def start_collector(bootstrap: str, topic: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "INBOXGRAPH_EVENTS_TOPIC": topic,
        "INBOXGRAPH_WRITE_KEY": KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "inboxgraph.cli", "collect", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError("the collector did not start")


def collector_throughput(url: str, events: int, threads: int = 4) -> float:
    per_request = 100
    batches = events // per_request
    bodies = [
        orjson.dumps(
            {
                "batch": [
                    {
                        "type": "track",
                        "anonymousId": f"anon-{(b * per_request + i) % 5000}",
                        "event": "Product Viewed",
                        "properties": {"product_id": f"P{i:04d}"},
                    }
                    for i in range(per_request)
                ]
            }
        )
        for b in range(batches)
    ]
    failures: list[int] = []

    def send(chunk: list[bytes]) -> None:
        with requests.Session() as session:
            session.auth = (KEY, "")
            for body in chunk:
                response = session.post(
                    f"{url}/v1/batch",
                    data=body,
                    timeout=30,
                    headers={"Content-Type": "application/json"},
                )
                if response.status_code != 200:
                    failures.append(response.status_code)

    workers = [threading.Thread(target=send, args=(bodies[i::threads],)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} batches refused: {failures[:3]}")
    return batches * per_request / elapsed


def bare_consume(bootstrap: str, topic: str, expected: int) -> float:
    """Seconds from the partitions' assignment to the last message, for a plain consume loop."""
    assigned: list[float] = []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"floor-{time.time()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer.subscribe([topic], on_assign=lambda *_: assigned.append(time.monotonic()))
    seen = 0
    while seen < expected:
        messages = consumer.consume(5000, 1.0)
        seen += sum(1 for m in messages if not m.error())
    elapsed = time.monotonic() - assigned[0]
    consumer.close()
    return elapsed


def worker_consume(bootstrap: str, topic: str, lake: LakeResource, expected: int) -> float:
    """Seconds from the partitions' assignment to the last batch landed and committed."""

    def on_batch(report: object) -> None:
        if worker.landed >= expected:
            worker.stop()

    worker = StreamWorker(
        bootstrap, topic, lake, group_id=f"worker-{time.time()}", on_batch=on_batch
    )
    worker.run()
    if worker.landed != expected:
        raise RuntimeError(f"the worker landed {worker.landed} of {expected} events")
    return time.monotonic() - worker.assigned_at


def latency(paths, url: str, bootstrap: str, topic: str, samples: int) -> list[float]:
    """Seconds from each 200 to the event counted in the live profile."""
    lake = LakeResource(url=paths.lake_url)
    worker = StreamWorker(
        bootstrap, topic, lake, group_id=f"live-{time.time()}", max_wait_seconds=0.2
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while worker.assigned_at is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the stream worker was never assigned the topic")
        time.sleep(0.1)
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        user = con.sql(
            "select identifier_value from marts.identity_map where "
            "identifier_type = 'user_id' order by 1 limit 1"
        ).fetchone()[0]
        person = con.execute(
            "select person_id from marts.identity_map where identifier_type "
            "= 'user_id' and identifier_value = ?",
            [user],
        ).fetchone()[0]

    def seen() -> int:
        with duckdb.connect(paths.warehouse, read_only=True) as con:
            row = con.execute(
                "select live.events_since_batch from "
                "marts.customer_profiles_live where person_id = ?",
                [person],
            ).fetchone()
        return row[0] if row else 0

    results = []
    session = requests.Session()
    session.auth = (KEY, "")
    baseline = seen()
    for n in range(samples):
        body = {"userId": user, "event": "Product Added", "properties": {"product_id": "P0001"}}
        response = session.post(f"{url}/v1/track", json=body, timeout=30)
        acknowledged = time.perf_counter()
        response.raise_for_status()
        while seen() < baseline + n + 1:
            if time.perf_counter() - acknowledged > 60:
                raise RuntimeError("an event never became visible")
            time.sleep(0.02)
        results.append(time.perf_counter() - acknowledged)
    worker.stop()
    thread.join(timeout=30)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--latency-samples", type=int, default=40)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternated floor and worker measurements"
    )
    parser.add_argument(
        "--phases",
        default="collector,worker,latency",
        help="which measurements to run, comma-separated",
    )
    parser.add_argument(
        "--people",
        type=int,
        default=300,
        help="size of the warehouse the live profile query runs against",
    )
    args = parser.parse_args()
    phases = set(args.phases.split(","))

    with tempfile.TemporaryDirectory() as home, tansu_broker() as bootstrap:
        paths = ensure_environment(home)
        if "latency" in phases:
            generate_landing(
                Path(paths.landing_url),
                GenerateOptions(people=args.people, days=30, end=date.today()),
            )
            print(f"building a warehouse of {args.people} people for the live profile ...")
            summary = run_pipeline(paths, log=lambda _: None)
            assert summary.succeeded, summary

        topic = "bench.events"
        create_topic(bootstrap, topic, partitions=2)
        collector, url = start_collector(bootstrap, topic)
        results: list[bool] = []
        try:
            rate = collector_throughput(url, args.events)
            print(f"collector /v1/batch -> Kafka: {rate:,.0f} events/s (target >= 5,000)")
            results.append(rate >= 5000)
            if "worker" in phases:
                # Alternated, each the median of its rounds: the broker's pace varies.
                floors, ours_runs = [], []
                for round_ in range(args.rounds):
                    floors.append(bare_consume(bootstrap, topic, args.events))
                    lake = LakeResource(url=f"{home}/worker-round-{round_}")
                    ours_runs.append(worker_consume(bootstrap, topic, lake, args.events))
                floor, ours = statistics.median(floors), statistics.median(ours_runs)
                ratio = floor / ours
                print(f"floor (bare consume loop):     {args.events / floor:,.0f} events/s")
                print(
                    f"stream worker (Kafka -> lake): {args.events / ours:,.0f} events/s; "
                    f"{ratio:.0%} of the floor (target >= 50%)"
                )
                results.append(ratio >= 0.5)
            if "latency" in phases:
                live_topic = "bench.live"
                create_topic(bootstrap, live_topic, partitions=1)
                collector.terminate()
                collector.wait(timeout=10)
                collector, url = start_collector(bootstrap, live_topic)
                delays = latency(paths, url, bootstrap, live_topic, args.latency_samples)
                p95 = statistics.quantiles(delays, n=20)[-1]
                print(
                    f"collector 200 -> live profile: p50 {statistics.median(delays):.2f} s, "
                    f"p95 {p95:.2f} s over {len(delays)} events (target p95 <= 5 s)"
                )
                results.append(p95 <= 5)
            print("PASS" if all(results) else "FAIL")
        finally:
            collector.terminate()
            collector.wait(timeout=10)


if __name__ == "__main__":
    main()
