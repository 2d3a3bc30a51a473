"""A Segment-compatible event collector (the HTTP Tracking API).

``POST /v1/identify|track|page|screen|alias|group|batch`` with HTTP Basic auth (the write key as
user name), as Segment's and RudderStack's client libraries send them. Messages are validated
with the lake's own rules (``inboxgraph.transforms.web_events``), get ``receivedAt`` (and a
``messageId`` when missing), and the request is answered 200 only once they are durable:
acknowledged by Kafka when KAFKA_BOOTSTRAP_SERVERS is set, else appended and fsynced to the
landing zone, where the batch path lands them.
"""

from __future__ import annotations

import base64
import gzip
import os
import socket
import threading
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


class KafkaSink:
    """Produces each message to the events topic (keyed by user, else anonymous id) and waits
    for the broker's acknowledgement of all of them."""

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

    def write(self, messages: list[dict]) -> None:
        failures: list[str] = []

        def delivered(error: object, _message: object) -> None:
            if error is not None:
                failures.append(str(error))

        for message in messages:
            key = message.get("userId") or message.get("anonymousId")
            self.producer.produce(
                self.topic,
                value=orjson.dumps(message),
                key=None if key is None else str(key),
                on_delivery=delivered,
            )
            self.producer.poll(0)
        remaining = self.producer.flush(30)
        if remaining or failures:
            raise OSError(
                f"Kafka did not acknowledge {remaining or len(failures)} message(s): {failures[:1]}"
            )


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


def prepare_messages(call: str, body: dict, settings: CollectorSettings) -> list[dict]:
    """The request's messages, enriched and validated; raises Rejected (400, 413)."""
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
    lines = pl.DataFrame(
        {
            "_raw": encoded,
            "_source_file": ["collector"] * len(encoded),
            "_line": list(range(len(encoded))),
        },
        schema={"_raw": pl.String, "_source_file": pl.String, "_line": pl.Int64},
    )
    reasons = (
        web_events.prepare(lines, datetime.now(UTC).date())
        .collect()
        .sort("_line")
        .get_column("reason")
        .to_list()
    )
    invalid = [
        {"index": i, "reason": r} for i, r in enumerate(reasons) if r not in ACCEPTED_REASONS
    ]
    if invalid:
        raise Rejected(400, "invalid message(s); nothing was accepted", invalid)
    return messages


def build_app(
    sink: Sink, settings: CollectorSettings, on_accept: Callable[[int], None] | None = None
) -> Starlette:
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
            messages = await run_in_threadpool(prepare_messages, call, body, settings)
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
