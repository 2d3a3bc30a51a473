"""A Segment-compatible event collector (the HTTP Tracking API).

``POST /v1/identify|track|page|screen|alias|group|batch`` with HTTP Basic auth (the write key as
user name), as Segment's and RudderStack's client libraries send them. Messages are validated
with the lake's own rules (``inboxgraph.transforms.web_events``), get ``receivedAt`` (and a
``messageId`` when missing), and the request is answered 200 only once they are durable:
acknowledged by Kafka when KAFKA_BOOTSTRAP_SERVERS is set, else appended and fsynced to the
landing zone, where the batch path lands them.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson
import polars as pl
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from inboxgraph.transforms import web_events

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
CALLS = ("identify", "track", "page", "screen", "alias", "group")
# A repeated message id inside one request is left to the lake's deduplication.
ACCEPTED_REASONS = {None, "duplicate_message_id"}


class Sink(Protocol):
    def write(self, messages: list[dict]) -> None:
        """Return only once every message is durable; raise otherwise."""


class LandingSink:
    """Appends messages to ``<landing>/web_events/<received date>/collector-<host>-<pid>.jsonl``
    and fsyncs before returning."""

    def __init__(self, landing: Path) -> None:
        self.root = Path(landing) / "web_events"
        self.name = f"collector-{socket.gethostname()}-{os.getpid()}.jsonl"
        self.lock = threading.Lock()

    def write(self, messages: list[dict]) -> None:
        by_day: dict[str, list[bytes]] = {}
        for message in messages:
            by_day.setdefault(message["receivedAt"][:10], []).append(orjson.dumps(message) + b"\n")
        with self.lock:
            for day, lines in by_day.items():
                folder = self.root / day
                folder.mkdir(parents=True, exist_ok=True)
                with open(folder / self.name, "ab") as handle:
                    handle.write(b"".join(lines))
                    handle.flush()
                    os.fsync(handle.fileno())


class _Deliveries:
    """Counts one request's delivery reports; ``done`` is set once all have arrived."""

    def __init__(self, expected: int) -> None:
        self.remaining = expected
        self.failures: list[str] = []
        self.done = threading.Event()
        if expected == 0:
            self.done.set()

    def delivered(self, error: object, _message: object) -> None:
        if error is not None:
            self.failures.append(str(error))
        self.remaining -= 1
        if self.remaining == 0:
            self.done.set()


class KafkaSink:
    """Produces each message to the events topic (keyed by user, else anonymous id) and waits
    for the broker's acknowledgement of all of them.

    A request waits for its own messages only, not for the whole producer queue (which
    concurrent requests keep filling); one thread serves the delivery reports.
    """

    ACK_TIMEOUT_SECONDS = 30

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        from confluent_kafka import Producer

        self.topic = topic
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 2,
                "compression.type": "lz4",
            }
        )
        self._closed = threading.Event()
        self._poller = threading.Thread(
            target=self._serve_reports, name="inboxgraph-delivery", daemon=True
        )
        self._poller.start()

    def _serve_reports(self) -> None:
        while not self._closed.is_set():
            self.producer.poll(0.05)

    def write(self, messages: list[dict]) -> None:
        deliveries = _Deliveries(len(messages))
        for message in messages:
            key = message.get("userId") or message.get("anonymousId")
            value = orjson.dumps(message)
            while True:
                try:
                    self.producer.produce(
                        self.topic,
                        value=value,
                        key=None if key is None else str(key),
                        on_delivery=deliveries.delivered,
                    )
                    break
                except BufferError:  # the local queue is full: wait for deliveries
                    time.sleep(0.01)
        if not deliveries.done.wait(self.ACK_TIMEOUT_SECONDS):
            raise OSError(
                f"Kafka did not acknowledge {deliveries.remaining} message(s) "
                f"within {self.ACK_TIMEOUT_SECONDS} s"
            )
        if deliveries.failures:
            raise OSError(
                f"Kafka refused {len(deliveries.failures)} message(s): {deliveries.failures[0]}"
            )

    def close(self) -> None:
        self.producer.flush(self.ACK_TIMEOUT_SECONDS)
        self._closed.set()
        self._poller.join()


@dataclass
class CollectorSettings:
    write_key: str | None = None
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_batch_bytes: int = MAX_BATCH_BYTES


class Rejected(Exception):
    def __init__(self, status: int, error: str, details: object = None) -> None:
        super().__init__(error)
        self.status, self.error, self.details = status, error, details


def _now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _authorize(request: Request, body: dict, write_key: str | None) -> None:
    if not write_key:
        return
    header = request.headers.get("authorization", "")
    presented = None
    if header.lower().startswith("basic "):
        try:
            presented = base64.b64decode(header[6:]).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            presented = None
    presented = presented or body.get("writeKey")
    if presented != write_key:
        raise Rejected(401, "missing or wrong write key")


def _decode(raw: bytes, encoding: str, limit: int) -> dict:
    if encoding == "gzip":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise Rejected(400, f"body is not valid gzip: {exc}") from exc
    if len(raw) > limit:
        raise Rejected(413, f"request body is {len(raw)} bytes; the limit is {limit}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected(400, f"malformed JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Rejected(400, "the body must be a JSON object")
    return body


def enrich_messages(
    call: str, body: dict, settings: CollectorSettings
) -> tuple[list[dict], list[str]]:
    """The request's messages with ``receivedAt`` (and ``messageId``) added, and each one's JSON
    text; raises Rejected (400, 413) for a malformed request or an oversize message."""
    if call == "batch":
        batch = body.get("batch")
        if not isinstance(batch, list) or not batch:
            raise Rejected(400, "`batch` must be a non-empty list of messages")
        shared = {k: body[k] for k in ("context", "integrations") if k in body}
        messages = [{**shared, **m} if isinstance(m, dict) else m for m in batch]
    else:
        messages = [{**body, "type": call}]
    received = _now()
    encoded = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise Rejected(400, "every message must be a JSON object", {"index": index})
        message.pop("writeKey", None)
        message.setdefault("messageId", f"ig-{uuid.uuid4()}")
        message["receivedAt"] = received
        message.setdefault("timestamp", message.get("originalTimestamp") or received)
        line = orjson.dumps(message)
        if len(line) > settings.max_message_bytes:
            raise Rejected(
                413,
                f"message {index} is {len(line)} bytes; the limit is {settings.max_message_bytes}",
                {"index": index},
            )
        encoded.append(line.decode())
    return messages, encoded


def validation_reasons(encoded: list[str]) -> list[str | None]:
    """Why each message would be quarantined by the lake (None for a good one), in order."""
    lines = pl.DataFrame(
        {
            "_raw": encoded,
            "_source_file": ["collector"] * len(encoded),
            "_line": list(range(len(encoded))),
        },
        schema={"_raw": pl.String, "_source_file": pl.String, "_line": pl.Int64},
    )
    return (
        web_events.prepare(lines, datetime.now(UTC).date())
        .collect()
        .sort("_line")
        .get_column("reason")
        .to_list()
    )


def reject_invalid(reasons: list[str | None]) -> None:
    invalid = [
        {"index": i, "reason": r} for i, r in enumerate(reasons) if r not in ACCEPTED_REASONS
    ]
    if invalid:
        raise Rejected(400, "invalid message(s); nothing was accepted", invalid)


class GroupValidator:
    """Validates the messages of concurrent requests together (group commit).

    Validation has a fixed cost per call (a DuckDB query and a polars plan) that is larger
    than the cost per message of a typical batch, so requests that arrive while one
    validation runs wait for it and are then validated in one call. An idle collector
    validates a request at once. A repeated message id across the grouped requests only
    flags a duplicate, which is accepted, so every request gets the answer it would get alone.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[list[str], asyncio.Future[list[str | None]]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def reasons(self, encoded: list[str]) -> list[str | None]:
        future: asyncio.Future[list[str | None]] = asyncio.get_running_loop().create_future()
        self._waiting.append((encoded, future))
        if self._drainer is None:
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                combined = [line for encoded, _ in group for line in encoded]
                try:
                    reasons = await run_in_threadpool(validation_reasons, combined)
                except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                    for _, future in group:
                        future.set_exception(exc)
                    continue
                start = 0
                for encoded, future in group:
                    future.set_result(reasons[start : start + len(encoded)])
                    start += len(encoded)
        finally:
            self._drainer = None


def build_app(
    sink: Sink, settings: CollectorSettings, on_accept: Callable[[int], None] | None = None
) -> Starlette:
    validator = GroupValidator()

    async def handle(request: Request) -> JSONResponse:
        call = request.path_params["call"]
        if call not in (*CALLS, "batch"):
            return JSONResponse({"error": f"unknown call {call!r}"}, status_code=404)
        limit = settings.max_batch_bytes if call == "batch" else settings.max_message_bytes
        declared = int(request.headers.get("content-length") or 0)
        try:
            if declared > limit and request.headers.get("content-encoding") != "gzip":
                raise Rejected(413, f"request body is {declared} bytes; the limit is {limit}")
            raw = await request.body()
            body = _decode(raw, request.headers.get("content-encoding", ""), limit)
            _authorize(request, body, settings.write_key)
            messages, encoded = enrich_messages(call, body, settings)
            reject_invalid(await validator.reasons(encoded))
        except Rejected as rejected:
            payload = {"error": rejected.error}
            if rejected.details is not None:
                payload["details"] = rejected.details
            return JSONResponse(payload, status_code=rejected.status)
        try:
            await run_in_threadpool(sink.write, messages)
        except OSError as exc:
            return JSONResponse({"error": f"not stored: {exc}"}, status_code=503)
        if on_accept is not None:
            on_accept(len(messages))
        return JSONResponse({"success": True})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/{call}", handle, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
