"""A local Mixpanel Raw Event Export API that enforces the vendor's documented contract.

``GET /api/2.0/export`` (https://developer.mixpanel.com/reference/raw-event-export):
- HTTP Basic auth: a service account (``username:secret``, with ``project_id`` required) or a
  project secret as the username with an empty password; anything else is 401;
- ``from_date`` and ``to_date`` (``YYYY-MM-DD``, inclusive, UTC, ``from_date`` not after
  ``to_date``) are required, else 400 with a JSON error;
- at most 3 queries a second (and 60 an hour) per project, else 429 with ``Retry-After``;
- the answer is JSON lines, one event per line, gzip-compressed when asked.
Faults are injected on demand: queued status codes, and responses cut off mid-body.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class FakeMixpanel:
    username: str = "inboxgraph-sa.1234.mp-service-account"
    secret: str = "sa-secret"
    project_id: str = "1234"
    per_second: int = 3
    per_hour: int = 60
    # day -> export lines (each a dict)
    events: dict[str, list[dict]] = field(default_factory=dict)
    # status codes to answer the next requests with, in order (429 carries Retry-After: 1)
    faults: deque[int] = field(default_factory=deque)
    # days whose next answer is cut off halfway through the body
    cut_off: set[str] = field(default_factory=set)
    # every request: (day range or None, status)
    log: list[tuple[str | None, int]] = field(default_factory=list)
    _recent: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def add(self, day: str, lines: list[dict]) -> None:
        self.events.setdefault(day, []).extend(lines)

    def _authorized(self, header: str | None, params: dict[str, str]) -> str | None:
        """None when the credentials are good, else why not."""
        if not header or not header.startswith("Basic "):
            return "missing Authorization header"
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return "malformed Authorization header"
        if user == self.username and password == self.secret:
            if params.get("project_id") != self.project_id:
                return "project_id is required with a service account"
            return None
        if user == self.secret and password == "":
            return None
        return "Invalid credentials"

    def _rate_limited(self) -> bool:
        with self._lock:
            now = time.monotonic()
            while self._recent and now - self._recent[0] > 3600:
                self._recent.popleft()
            last_second = sum(1 for t in self._recent if now - t < 1)
            if last_second >= self.per_second or len(self._recent) >= self.per_hour:
                return True
            self._recent.append(now)
            return False

    def answer(self, path: str, query: str, auth: str | None) -> tuple[int, dict, bytes, str]:
        """(status, headers, body, day range) for one request."""
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        if path != "/api/2.0/export":
            return 404, {}, b'{"error": "not found"}', ""
        why = self._authorized(auth, params)
        if why:
            return 401, {}, json.dumps({"error": why}).encode(), ""
        first, last = params.get("from_date", ""), params.get("to_date", "")
        span = f"{first}..{last}"
        if not (DATE.match(first) and DATE.match(last)):
            error = "from_date and to_date are required, as YYYY-MM-DD"
            return 400, {}, json.dumps({"error": error}).encode(), span
        if first > last:
            return 400, {}, b'{"error": "from_date must not be after to_date"}', span
        if self._rate_limited():
            return 429, {"Retry-After": "1"}, b'{"error": "rate limit exceeded"}', span
        if self.faults:
            status = self.faults.popleft()
            headers = {"Retry-After": "1"} if status == 429 else {}
            return status, headers, json.dumps({"error": f"injected {status}"}).encode(), span
        day = date.fromisoformat(first)
        lines = []
        while day.isoformat() <= last:
            lines.extend(export_text(e) for e in self.events.get(day.isoformat(), []))
            day += timedelta(days=1)
        body = "".join(line + "\n" for line in lines).encode()
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, body, span

    @contextmanager
    def serve(self) -> Iterator[FakeMixpanel]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                status, headers, body, span = fake.answer(
                    parsed.path, parsed.query, self.headers.get("Authorization")
                )
                fake.log.append((span or None, status))
                first = span.split("..")[0] if span else ""
                cut = status == 200 and first in fake.cut_off
                if cut:
                    fake.cut_off.discard(first)
                if status == 200 and "gzip" in (self.headers.get("Accept-Encoding") or ""):
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if cut:
                    # Half the body, then the connection drops.
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client closing its keep-alive connection is no error

        server = Server(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


def export_text(line: dict) -> str:
    """One line as the export writes it (compact JSON)."""
    return json.dumps(line, separators=(",", ":"))


def export_line(day: str, n: int, device: str, **properties: object) -> dict:
    """One event of the Raw Event Export on ``day``."""
    moment = datetime.fromisoformat(day).replace(tzinfo=UTC) + timedelta(minutes=7 * n)
    return {
        "event": properties.pop("event", "Product Viewed"),
        "properties": {
            "time": int(moment.timestamp()),
            "distinct_id": f"$device:{device}",
            "$device_id": device,
            "$insert_id": f"{day}-{device}-{n}",
            "mp_processing_time_ms": int(moment.timestamp() * 1000) + 250,
            "$current_url": f"https://shop.example.com/products/p{n:04d}",
            **properties,
        },
    }
