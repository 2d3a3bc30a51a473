"""The collector under hostile traffic: a Segment write key is public, so anyone can send
decompression bombs, floods and slow requests with a valid one."""

from __future__ import annotations

import contextlib
import gzip
import os
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest
import requests

from inboxgraph.collector import (
    CollectorSettings,
    KafkaSink,
    LandingSink,
    RateLimiter,
    Rejected,
    build_app,
    inflate,
)
from inboxgraph.settings import Paths
from tests.local_kafka import free_port
from tests.stream.server import serve

KEY = "hostile-key"
GIB = 1 << 30


def _bomb(inflated: int, wbits: int = 16 + zlib.MAX_WBITS) -> bytes:
    """A gzip (or zlib) body of ``inflated`` spaces, compressed about 1000 to 1."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b" " * (16 << 20)
    parts = [compressor.compress(block) for _ in range(inflated // len(block))]
    parts.append(compressor.compress(b" " * (inflated % len(block))))
    parts.append(compressor.flush())
    return b"".join(parts)


@pytest.fixture(scope="module")
def gib_bomb() -> bytes:
    return _bomb(GIB)


def test_inflating_stops_at_the_limit_in_bounded_memory(gib_bomb: bytes) -> None:
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(Rejected) as rejected:
        inflate(gib_bomb, "gzip", 512_000)
    elapsed = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert rejected.value.status == 413
    assert peak < 4 * len(gib_bomb) + 2 * 512_000, peak
    assert elapsed < 1, elapsed
    body = orjson.dumps({"batch": [{"type": "page", "anonymousId": "a"}]})
    assert inflate(gzip.compress(body), "gzip", 512_000) == body
    assert inflate(zlib.compress(body), "deflate", 512_000) == body
    assert inflate(gzip.compress(body) + gzip.compress(body), "gzip", 512_000) == body + body
    for broken, status in ((gzip.compress(body)[:-12], 400), (b"not gzip", 400)):
        with pytest.raises(Rejected) as bad:
            inflate(broken, "gzip", 512_000)
        assert bad.value.status == status
    with pytest.raises(Rejected) as unknown:
        inflate(body, "br", 512_000)
    assert unknown.value.status == 415


def test_rate_limiter_refills_and_forgets_the_least_recent_keys() -> None:
    limiter = RateLimiter(rate=2, burst=3, max_keys=2)
    assert [limiter.wait_seconds("a", now=0.0) for _ in range(3)] == [0, 0, 0]
    assert limiter.wait_seconds("a", now=0.0) == pytest.approx(0.5)
    assert limiter.wait_seconds("a", now=0.5) == 0  # one token back after half a second
    limiter.wait_seconds("b", now=1.0)
    limiter.wait_seconds("c", now=1.0)  # "a" is forgotten: memory stays bounded
    assert "a" not in limiter._buckets and len(limiter._buckets) == 2


@pytest.fixture
def collector_process(platform_home: Paths) -> Iterator[callable]:
    started: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[str, psutil.Process]:
        port = free_port()
        env = {**os.environ, "INBOXGRAPH_WRITE_KEY": KEY, "KAFKA_BOOTSTRAP_SERVERS": ""}
        process = subprocess.Popen(
            [sys.executable, "-m", "inboxgraph.cli", "collect", "--port", str(port), *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/health", timeout=1).ok:
                    return url, psutil.Process(process.pid)
            except requests.ConnectionError:
                pass
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=20)


def _track(url: str, n: int = 0, **kwargs: object) -> requests.Response:
    body = {"anonymousId": f"a{n}", "event": "Product Viewed", "messageId": f"m-{n}"}
    return requests.post(f"{url}/v1/track", json=body, auth=(KEY, ""), timeout=10, **kwargs)


def _landed_ids(platform_home: Paths) -> list[str]:
    ids = []
    for file in (Path(platform_home.landing_url) / "web_events").rglob("collector-*.jsonl"):
        ids += [orjson.loads(line)["messageId"] for line in file.read_bytes().splitlines()]
    return ids


def test_a_decompression_bomb_is_refused_fast_without_memory_or_stalling_others(
    collector_process: callable, gib_bomb: bytes, platform_home: Paths
) -> None:
    url, process = collector_process()
    for n in range(20):  # warm: the first requests import and plan the validation
        assert _track(url, n).status_code == 200
    before = process.memory_info().rss
    results: dict[str, object] = {}

    def send(name: str, data: object) -> None:
        started = time.monotonic()
        response = requests.post(
            f"{url}/v1/batch",
            data=data,
            auth=(KEY, ""),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            timeout=60,
        )
        results[name] = (response.status_code, response.json(), time.monotonic() - started)

    # A 1 MB body (1 GiB inflated) with its Content-Length; a 0.4 MB one (400 MiB inflated)
    # streamed in chunks with none, which only inflating reveals.
    small_bomb = _bomb(400 << 20)
    chunks = (small_bomb[i : i + 8192] for i in range(0, len(small_bomb), 8192))
    senders = [
        threading.Thread(target=send, args=("gib", gib_bomb)),
        threading.Thread(target=send, args=("streamed", chunks)),
    ]
    for sender in senders:
        sender.start()
    latencies = []
    for n in range(100, 110):
        started = time.monotonic()
        assert _track(url, n).status_code == 200
        latencies.append(time.monotonic() - started)
    for sender in senders:
        sender.join()
    for name in ("gib", "streamed"):
        status, body, elapsed = results[name]
        assert status == 413 and "limit" in body["error"], results[name]
        assert elapsed < 1, results[name]
    assert max(latencies) < 0.2, latencies
    assert process.memory_info().rss - before < 50 << 20
    assert sorted(_landed_ids(platform_home)) == sorted(
        [f"m-{n}" for n in range(20)] + [f"m-{n}" for n in range(100, 110)]
    )


def test_a_flood_gets_429_and_the_segment_client_still_delivers_every_event(
    collector_process: callable, platform_home: Paths
) -> None:
    import segment.analytics as analytics

    url, _ = collector_process("--rate-per-client", "5", "--burst-per-client", "5")
    flood = [_track(url, n) for n in range(30)]
    limited = [r for r in flood if r.status_code == 429]
    assert limited and all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert all("error" in r.json() for r in limited)
    accepted = {f"m-{n}" for n, r in enumerate(flood) if r.status_code == 200}

    client = analytics.Client(KEY, host=url, upload_size=10, max_retries=10)
    for n in range(150):
        client.track(anonymous_id=f"visitor-{n}", event="Product Viewed", message_id=f"segment-{n}")
    client.flush()
    client.join()
    landed = _landed_ids(platform_home)
    assert sorted(landed) == sorted(accepted | {f"segment-{n}" for n in range(150)})


def test_slow_clients_are_cut_off_without_delaying_others(
    collector_process: callable,
) -> None:
    url, _ = collector_process("--header-timeout", "2", "--body-timeout", "2")
    port = int(url.rsplit(":", 1)[1])
    for n in range(20):  # warm: the first requests import and plan the validation
        assert _track(url, 1000 + n).status_code == 200

    def trickle(payload: bytes, seconds: float) -> tuple[bytes, float]:
        """Send ``payload`` a byte a second; what the server answered, and when it hung up."""
        started = time.monotonic()
        received = b""
        with socket.create_connection(("127.0.0.1", port), timeout=seconds) as connection:
            try:
                for byte in payload:
                    connection.sendall(bytes([byte]))
                    time.sleep(1)
                    if time.monotonic() - started > seconds:
                        break
            except OSError:
                pass  # the server closed the connection
            try:
                while chunk := connection.recv(65536):
                    received += chunk
            except OSError:
                pass
        return received, time.monotonic() - started

    headers = b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    results: dict[str, tuple[bytes, float]] = {}
    slow_headers = threading.Thread(
        target=lambda: results.setdefault("headers", trickle(headers * 10, 20))
    )
    body = b'{"anonymousId": "slow", "event": "x"}'
    request = headers + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"

    def slow_body() -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
            connection.sendall(request)
            received = b""
            try:
                for byte in body:
                    connection.sendall(bytes([byte]))
                    time.sleep(1)
                    if b"\r\n\r\n" in received:
                        break
                    connection.setblocking(False)
                    with contextlib.suppress(BlockingIOError):
                        received += connection.recv(65536)
                    connection.setblocking(True)
            except OSError:
                pass
            results["body"] = (received, time.monotonic() - started)

    threads = [slow_headers, threading.Thread(target=slow_body)]
    for thread in threads:
        thread.start()
    latencies = []
    for n in range(8):
        started = time.monotonic()
        assert _track(url, n).status_code == 200
        latencies.append(time.monotonic() - started)
        time.sleep(0.25)
    for thread in threads:
        thread.join()
    headers_answer, headers_elapsed = results["headers"]
    assert headers_elapsed < 6, "a client trickling its headers is disconnected"
    body_answer, body_elapsed = results["body"]
    assert body_answer.startswith(b"HTTP/1.1 408"), body_answer
    assert body_elapsed < 6
    assert max(latencies) < 0.2, latencies


def test_health_and_readiness(tmp_path: Path) -> None:
    sink = LandingSink(tmp_path / "landing")
    with serve(build_app(sink, CollectorSettings())) as url:
        assert requests.get(f"{url}/health", timeout=5).json() == {"status": "ok"}
        assert requests.get(f"{url}/ready", timeout=5).status_code == 200
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the landing folder should be")
    with serve(build_app(LandingSink(blocked), CollectorSettings())) as url:
        response = requests.get(f"{url}/ready", timeout=5)
        assert response.status_code == 503 and response.json()["error"]
    kafka = KafkaSink(f"127.0.0.1:{free_port()}", "inboxgraph.events")  # nothing listens
    try:
        with serve(build_app(kafka, CollectorSettings())) as url:
            response = requests.get(f"{url}/ready", timeout=10)
            assert response.status_code == 503 and "error" in response.json()
    finally:
        kafka._closed.set()
