"""A Segment-compatible event collector (the HTTP Tracking API).

``POST /v1/identify|track|page|screen|alias|group|batch`` with HTTP Basic auth (the write key as
user name), as Segment's and RudderStack's client libraries send them. Messages are validated
with the lake's own rules (``inboxgraph.transforms.web_events``), get ``receivedAt`` (and a
``messageId`` when missing), and the request is answered 200 only once they are durable:
acknowledged by Kafka when KAFKA_BOOTSTRAP_SERVERS is set, else appended and fsynced to the
landing zone, where the batch path lands them.

``POST /webhooks/<esp>`` (``mailchimp``, ``sendgrid``, ``klaviyo``) takes the ESPs' consent
webhooks, authenticated as each vendor does (inboxgraph.webhooks) with the secret in
``INBOXGRAPH_<ESP>_WEBHOOK_SECRET``; an ESP without a secret has no endpoint. Their events are
appended (and fsynced) to the landing zone's ESP events, where the batch path lands them and
the next audience sync leaves out whoever withdrew.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import math
import os
import socket
import threading
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
import polars as pl
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from inboxgraph import webhooks
from inboxgraph.transforms import web_events

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
# Plain bodies up to this size are parsed on the event loop; larger or compressed ones (which
# may inflate to the limit) in a worker thread.
INLINE_BODY_BYTES = 64 * 1024
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

    def ready(self) -> None:
        """Raise unless the landing folder takes a write."""
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / f".ready-{self.name}"
        probe.write_bytes(b"")
        probe.unlink()


class EspEventsSink:
    """Appends webhook events to ``<landing>/esp_events/<received date>/webhook-<esp>-<host>-
    <pid>.jsonl`` and fsyncs before returning: the ESP events' batch path lands them."""

    def __init__(self, landing: Path) -> None:
        self.root = Path(landing) / "esp_events"
        self.lock = threading.Lock()

    def write(self, esp: str, events: list[dict]) -> None:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        folder = self.root / day
        name = f"webhook-{esp}-{socket.gethostname()}-{os.getpid()}.jsonl"
        with self.lock:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / name, "ab") as handle:
                handle.write(b"".join(orjson.dumps(e) + b"\n" for e in events))
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

    def ready(self) -> None:
        """Raise unless the broker answers with the events topic."""
        metadata = self.producer.list_topics(self.topic, timeout=2)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            raise OSError(f"Kafka topic {self.topic} unavailable: {topic.error if topic else ''}")

    def close(self) -> None:
        self.producer.flush(self.ACK_TIMEOUT_SECONDS)
        self._closed.set()
        self._poller.join()


@dataclass
class CollectorSettings:
    """What one collector accepts. The write key is public (it ships in every visitor's
    browser), so every limit holds for any anonymous client that presents it."""

    write_key: str | None = None
    max_message_bytes: int = MAX_MESSAGE_BYTES
    max_batch_bytes: int = MAX_BATCH_BYTES
    # Requests per second (sustained, and the burst allowed above it) per write key and per
    # client address; beyond them a request gets 429 with Retry-After, which Segment's
    # clients wait out before sending again.
    rate_per_key: float = 1_000.0
    burst_per_key: int = 2_000
    rate_per_client: float = 200.0
    burst_per_client: int = 400
    # Requests in progress at once; beyond it 503 with Retry-After.
    max_concurrent_requests: int = 64
    # A client has this long to send its request line and headers, then its body; a slower
    # one (one byte a second, say) is cut off.
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 30.0
    # ESP -> the secret (or SendGrid's verification key) its webhooks are checked with; an ESP
    # not named has no webhook endpoint.
    webhook_secrets: dict[str, str] = field(default_factory=dict)


class Rejected(Exception):
    def __init__(
        self,
        status: int,
        error: str,
        details: object = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.details = status, error, details
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        payload: dict[str, object] = {"error": self.error}
        if self.details is not None:
            payload["details"] = self.details
        return JSONResponse(payload, status_code=self.status, headers=self.headers)


class RateLimiter:
    """Token buckets per key (a write key, a client address), in bounded memory: the least
    recently seen keys are forgotten first, and a forgotten key starts with a full bucket,
    as one that had been idle would."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def wait_seconds(self, key: str, now: float | None = None) -> float:
        """0 when a request from ``key`` may go now (and it is counted); otherwise how long
        until it may."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1:
            tokens -= 1
            wait = 0.0
        else:
            wait = (1 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait


def _too_many(wait: float, who: str) -> Rejected:
    seconds = max(1, math.ceil(wait))
    return Rejected(
        429,
        f"too many requests from this {who}; retry after {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def _now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _presented_key(request: Request) -> str | None:
    """The write key of the Basic authorization header (Segment's clients send it there)."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        return base64.b64decode(header[6:], validate=True).decode().split(":", 1)[0]
    except (ValueError, UnicodeDecodeError):
        return None


def _authorize(presented: str | None, body: dict, write_key: str | None) -> None:
    if not write_key:
        return
    presented = presented or body.get("writeKey")
    if not isinstance(presented, str) or not hmac.compare_digest(
        presented.encode(), write_key.encode()
    ):
        raise Rejected(401, "missing or wrong write key")


# HTTP's content codings the client libraries use, as zlib window settings: gzip's header,
# and deflate's zlib wrapper (RFC 9110).
INFLATE_WBITS = {
    "gzip": 16 + zlib.MAX_WBITS,
    "x-gzip": 16 + zlib.MAX_WBITS,
    "deflate": zlib.MAX_WBITS,
}


def _compressed_limit(limit: int) -> int:
    """The most bytes a compressed body of at most ``limit`` inflated bytes can take: deflate
    adds at most 5 bytes per 16 KB block to data it cannot compress, plus gzip's header."""
    return limit + 5 * (limit // 16_384 + 1) + 1_024


def body_limit(limit: int, encoding: str) -> int:
    """How many bytes of body to read for a request whose inflated limit is ``limit``."""
    return _compressed_limit(limit) if encoding in INFLATE_WBITS else limit


def inflate(raw: bytes, encoding: str, limit: int) -> bytes:
    """The body without its content coding; stops as soon as it passes ``limit`` bytes (413),
    so a small body that inflates to gigabytes costs ``limit`` bytes of memory at most."""
    if not encoding or encoding == "identity":
        if len(raw) > limit:
            raise Rejected(413, f"request body is {len(raw)} bytes; the limit is {limit}")
        return raw
    wbits = INFLATE_WBITS.get(encoding)
    if wbits is None:
        raise Rejected(415, f"unsupported Content-Encoding {encoding!r}; use gzip or deflate")
    out = bytearray()
    pending = raw
    try:
        while pending:  # a gzip body may hold several members
            inflater = zlib.decompressobj(wbits)
            out += inflater.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise Rejected(413, f"request body inflates past the limit of {limit} bytes")
            if not inflater.eof:
                if inflater.unconsumed_tail:
                    raise Rejected(413, f"request body inflates past the limit of {limit} bytes")
                raise Rejected(400, f"body is not valid {encoding}: it ends early")
            pending = inflater.unused_data if wbits != zlib.MAX_WBITS else b""
    except zlib.error as exc:
        raise Rejected(400, f"body is not valid {encoding}: {exc}") from exc
    return bytes(out)


def _decode(raw: bytes, encoding: str, limit: int) -> dict:
    body_bytes = inflate(raw, encoding, limit)
    try:
        body = orjson.loads(body_bytes)
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
        try:
            line = orjson.dumps(message)
        except orjson.JSONEncodeError as exc:  # nesting deeper than JSON encoders allow
            raise Rejected(
                400, f"message {index} cannot be stored: {exc}", {"index": index}
            ) from exc
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


def inflated_limit(call: str, settings: CollectorSettings) -> int:
    """The most bytes a request's body may hold once inflated: a batch's or one message's."""
    return settings.max_batch_bytes if call == "batch" else settings.max_message_bytes


def prepare_request(
    call: str,
    raw: bytes,
    encoding: str,
    presented_key: str | None,
    settings: CollectorSettings,
) -> tuple[list[dict], list[str]]:
    """Inflate, parse, authorize and enrich one request's body: the CPU-bound part, run off
    the event loop."""
    body = _decode(raw, encoding, inflated_limit(call, settings))
    _authorize(presented_key, body, settings.write_key)
    return enrich_messages(call, body, settings)


async def read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The raw body, at most ``limit`` bytes (413 as soon as it passes, or on a larger
    Content-Length), read within ``timeout`` seconds (408: a client trickling bytes)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Rejected(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise Rejected(413, f"request body is {declared} bytes; the limit is {limit}")
    received = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                received += chunk
                if len(received) > limit:
                    raise Rejected(413, f"request body passes the limit of {limit} bytes")
    except TimeoutError:
        raise Rejected(
            408, f"request body not received within {timeout:g} s", headers={"Connection": "close"}
        ) from None
    return bytes(received)


def build_app(
    sink: Sink,
    settings: CollectorSettings,
    on_accept: Callable[[int], None] | None = None,
    esp_sink: EspEventsSink | None = None,
) -> Starlette:
    validator = GroupValidator()
    per_client = RateLimiter(settings.rate_per_client, settings.burst_per_client)
    per_key = RateLimiter(settings.rate_per_key, settings.burst_per_key)
    in_progress = 0

    async def accept(request: Request, call: str) -> list[dict]:
        client = request.client.host if request.client else "unknown"
        wait = per_client.wait_seconds(client)
        if wait:
            raise _too_many(wait, "client")
        presented = _presented_key(request)
        if settings.write_key and presented is not None:
            _authorize(presented, {}, settings.write_key)
        if presented is not None and (wait := per_key.wait_seconds(presented)):
            raise _too_many(wait, "write key")
        encoding = request.headers.get("content-encoding", "").strip().lower()
        limit = body_limit(inflated_limit(call, settings), encoding)
        raw = await read_body(request, limit, settings.body_timeout_seconds)
        args = (call, raw, encoding, presented, settings)
        if len(raw) <= INLINE_BODY_BYTES and encoding in ("", "identity"):
            # A small plain body parses in well under a millisecond: a thread hop would
            # cost more than the work.
            messages, encoded = prepare_request(*args)
        else:
            messages, encoded = await run_in_threadpool(prepare_request, *args)
        # A key sent in the body (not the header) is counted once the body is read.
        if (
            presented is None
            and settings.write_key
            and (wait := per_key.wait_seconds(settings.write_key))
        ):
            raise _too_many(wait, "write key")
        reject_invalid(await validator.reasons(encoded))
        return messages

    async def handle(request: Request) -> JSONResponse:
        nonlocal in_progress
        call = request.path_params["call"]
        if call not in (*CALLS, "batch"):
            return JSONResponse({"error": f"unknown call {call!r}"}, status_code=404)
        if in_progress >= settings.max_concurrent_requests:
            return Rejected(
                503, "the collector is busy; retry shortly", headers={"Retry-After": "1"}
            ).response()
        in_progress += 1
        try:
            messages = await accept(request, call)
            await run_in_threadpool(sink.write, messages)
        except Rejected as rejected:
            return rejected.response()
        except OSError as exc:
            return JSONResponse({"error": f"not stored: {exc}"}, status_code=503)
        finally:
            in_progress -= 1
        if on_accept is not None:
            on_accept(len(messages))
        return JSONResponse({"success": True})

    async def webhook(request: Request) -> JSONResponse:
        esp = request.path_params["esp"]
        secret = settings.webhook_secrets.get(esp)
        if esp not in webhooks.ESPS or not secret or esp_sink is None:
            return JSONResponse({"error": f"no webhook endpoint for {esp!r}"}, status_code=404)
        client = request.client.host if request.client else "unknown"
        if wait := per_client.wait_seconds(client):
            return _too_many(wait, "client").response()
        if request.method == "GET":  # Mailchimp checks the URL before it saves the webhook
            return JSONResponse({"status": "ok"})
        try:
            raw = await read_body(request, settings.max_batch_bytes, settings.body_timeout_seconds)
            query = dict(request.query_params)
            headers = {k.lower(): v for k, v in request.headers.items()}
            events = await run_in_threadpool(webhooks.verify, esp, query, headers, raw, secret)
            if events:
                await run_in_threadpool(esp_sink.write, esp, events)
        except Rejected as rejected:
            return rejected.response()
        except webhooks.Unauthorized as refused:
            return JSONResponse({"error": f"unauthorized: {refused}"}, status_code=401)
        except webhooks.Malformed as malformed:
            return JSONResponse({"error": str(malformed)}, status_code=400)
        except OSError as exc:
            return JSONResponse({"error": f"not stored: {exc}"}, status_code=503)
        return JSONResponse({"success": True, "events": len(events)})

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> JSONResponse:
        problem = await run_in_threadpool(_readiness, sink)
        if problem:
            return JSONResponse({"status": "unavailable", "error": problem}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    return Starlette(
        routes=[
            Route("/v1/{call}", handle, methods=["POST"]),
            Route("/webhooks/{esp}", webhook, methods=["POST", "GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


def _readiness(sink: Sink) -> str | None:
    """Why the sink cannot store events now, or None."""
    check = getattr(sink, "ready", None)
    if check is None:
        return None
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - reported to the load balancer, not raised
        return str(exc) or type(exc).__name__
    return None


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol with a deadline for each request's line and headers: a client
    that connects and trickles them (slowloris) is disconnected instead of holding a
    connection slot. uvicorn's own keep-alive timeout covers idle connections; the body has
    its own deadline in the app."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_overdue)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_overdue(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_config(app: Starlette, host: str, port: int, settings: CollectorSettings) -> Any:
    """The uvicorn configuration the collector runs with (the command line and the tests)."""
    import uvicorn

    protocol = type(
        "CollectorProtocol",
        (HeaderDeadlineProtocol,),
        {"header_timeout": settings.header_timeout_seconds},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_level="warning",
        access_log=False,
        # Connections beyond this get 503 from uvicorn before any of the app's work.
        limit_concurrency=settings.max_concurrent_requests * 4,
        timeout_keep_alive=5,
    )
