"""A local HubSpot CRM v3 contacts API that enforces the vendor's documented contract.

- Private-app token as ``Authorization: Bearer``; anything else is 401 (``INVALID_AUTHENTICATION``).
- ``POST /crm/v3/objects/contacts/search``: ``filterGroups`` (at most 5, each of at most 10
  filters; ``GTE``/``GT``/``LTE``/``LT``/``EQ`` on a property, dates as epoch milliseconds),
  ``sorts``, ``properties``, ``limit`` (at most 200), ``after``; at most 10,000 results per
  query (``after`` + ``limit`` beyond it is 400); 4 requests a second, else 429 with the
  rate-limit headers. Archived contacts are not searchable.
- ``GET /crm/v3/objects/contacts?archived=true``: archived contacts, ``after`` paging.
- Every property value is a string; records carry ``id``, ``properties``, ``createdAt``,
  ``updatedAt``, ``archived`` (and ``archivedAt`` when archived).
Faults on demand: queued status codes (429 carries ``Retry-After: 1``) and ``"drop"``, a
response whose connection drops halfway through the body.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tests.sources.fake_http import Reply, Request, serve

DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
OPERATORS = {
    "GTE": lambda a, b: a >= b,
    "GT": lambda a, b: a > b,
    "LTE": lambda a, b: a <= b,
    "LT": lambda a, b: a < b,
    "EQ": lambda a, b: a == b,
}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


@dataclass
class FakeHubspot:
    token: str = "pat-na1-test-token"
    ceiling: int = 10_000
    per_second: int = 4
    contacts: dict[str, dict] = field(default_factory=dict)
    faults: deque = field(default_factory=deque)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path, status)
    searches: list[dict] = field(default_factory=list)  # the body of every search answered
    _recent: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    # ----------------------------------------------------------------- state
    def put(self, contact_id: str, modified_ms: int, **properties: str) -> dict:
        """Create or update a contact, modified at ``modified_ms``."""
        existing = self.contacts.get(contact_id)
        created = existing["createdAt"] if existing else iso(modified_ms)
        props = {**(existing or {}).get("properties", {}), **properties}
        props.update(hs_object_id=contact_id, createdate=created, lastmodifieddate=iso(modified_ms))
        contact = {
            "id": contact_id,
            "properties": props,
            "createdAt": created,
            "updatedAt": iso(modified_ms),
            "archived": False,
        }
        self.contacts[contact_id] = contact
        return contact

    def archive(self, contact_id: str, archived_ms: int) -> None:
        contact = self.contacts[contact_id]
        contact.update(archived=True, archivedAt=iso(archived_ms), updatedAt=iso(archived_ms))

    # ----------------------------------------------------------------- the API
    def _rate_limited(self) -> bool:
        with self._lock:
            now = time.monotonic()
            while self._recent and now - self._recent[0] > 1:
                self._recent.popleft()
            if len(self._recent) >= self.per_second:
                return True
            self._recent.append(now)
            return False

    def _limits(self) -> dict[str, str]:
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": "1000",
            "X-HubSpot-RateLimit-Max": str(self.per_second),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.per_second - len(self._recent))),
        }

    def answer(self, request: Request) -> Reply:
        reply = self._answer(request)
        self.log.append((request.method, request.path, reply.status))
        return reply

    def _answer(self, request: Request) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _error(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.")
        if self.faults:
            fault = self.faults.popleft()
            if fault == "drop":
                return Reply(200, b'{"results": [' + b" " * 400 + b"]}", cut_off=True)
            headers = {"Retry-After": "1", **self._limits()} if fault == 429 else {}
            return Reply(
                fault, json.dumps({"status": "error", "message": "injected"}).encode(), headers
            )
        if self._rate_limited():
            return Reply(
                429,
                json.dumps(
                    {
                        "status": "error",
                        "message": "You have reached your secondly limit.",
                        "errorType": "RATE_LIMIT",
                        "policyName": "SECONDLY",
                    }
                ).encode(),
                {"Retry-After": "1", **self._limits()},
            )
        if request.method == "POST" and request.path == "/crm/v3/objects/contacts/search":
            return self._search(request)
        if request.method == "GET" and request.path == "/crm/v3/objects/contacts":
            return self._list(request)
        return _error(404, "OBJECT_NOT_FOUND", f"no route {request.method} {request.path}")

    def _search(self, request: Request) -> Reply:
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return _error(400, "VALIDATION_ERROR", "Invalid input JSON")
        self.searches.append(body)
        limit = int(body.get("limit", 10))
        after = int(body.get("after") or 0)
        groups = body.get("filterGroups") or []
        if limit > 200 or limit < 1:
            return _error(400, "VALIDATION_ERROR", "limit must be between 1 and 200")
        if len(groups) > 5 or any(len(g.get("filters", [])) > 10 for g in groups):
            return _error(400, "VALIDATION_ERROR", "too many filter groups or filters")
        if after + limit > self.ceiling:
            return _error(
                400,
                "VALIDATION_ERROR",
                f"the search API returns at most {self.ceiling} results per query",
            )
        rows = [c for c in self.contacts.values() if not c["archived"]]
        if groups:
            rows = [c for c in rows if any(_matches(c, g["filters"]) for g in groups)]
        for sort in reversed(body.get("sorts") or []):
            name = sort["propertyName"]
            rows.sort(
                key=lambda c: (_sort_value(c, name), int(c["id"])),
                reverse=sort.get("direction") == "DESCENDING",
            )
        wanted = body.get("properties") or list(DEFAULT_PROPERTIES)
        page = [_shaped(c, wanted) for c in rows[after : after + limit]]
        answer: dict = {"total": len(rows), "results": page}
        if after + limit < len(rows):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return Reply(200, json.dumps(answer).encode())

    def _list(self, request: Request) -> Reply:
        archived = request.query.get("archived") == "true"
        limit = int(request.query.get("limit", 10))
        if limit > 100:
            return _error(400, "VALIDATION_ERROR", "limit must be at most 100")
        wanted = (request.query.get("properties") or ",".join(DEFAULT_PROPERTIES)).split(",")
        rows = sorted(
            (c for c in self.contacts.values() if c["archived"] == archived),
            key=lambda c: int(c["id"]),
        )
        after = request.query.get("after")
        if after:
            rows = [c for c in rows if int(c["id"]) > int(after)]
        page = rows[:limit]
        answer: dict = {"results": [_shaped(c, wanted) for c in page]}
        if len(rows) > limit:
            link = f"{self.url}/crm/v3/objects/contacts?after={page[-1]['id']}"
            answer["paging"] = {"next": {"after": page[-1]["id"], "link": link}}
        return Reply(200, json.dumps(answer).encode(), self._limits())

    @contextmanager
    def serve(self) -> Iterator[FakeHubspot]:
        with serve(lambda request: self.answer(request)) as url:
            self.url = url
            yield self


def _error(status: int, category: str, message: str) -> Reply:
    body = {"status": "error", "message": message, "category": category}
    return Reply(status, json.dumps(body).encode())


def _sort_value(contact: dict, name: str) -> object:
    value = contact["properties"].get(name)
    if name in ("lastmodifieddate", "createdate") and value:
        return _ms(value)
    return value or ""


def _matches(contact: dict, filters: list[dict]) -> bool:
    for rule in filters:
        name, operator = rule["propertyName"], rule["operator"]
        actual = _sort_value(contact, name)
        expected: object = rule.get("value")
        if name in ("lastmodifieddate", "createdate"):
            text = str(expected)
            expected = int(text) if text.isdigit() else _ms(text)
        if not OPERATORS[operator](actual, expected):
            return False
    return True


def _shaped(contact: dict, wanted: list[str]) -> dict:
    shaped = {
        "id": contact["id"],
        "properties": {k: contact["properties"].get(k) for k in wanted},
        "createdAt": contact["createdAt"],
        "updatedAt": contact["updatedAt"],
        "archived": contact["archived"],
    }
    if contact.get("archivedAt"):
        shaped["archivedAt"] = contact["archivedAt"]
    return shaped
