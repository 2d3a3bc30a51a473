"""A local Salesforce REST API (SOQL query endpoints and the OAuth token endpoint) that enforces
the vendor's documented contract.

- ``Authorization: Bearer <token>``; a missing, wrong or expired one is 401
  ``[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]``.
- ``POST /services/oauth2/token`` with ``grant_type=client_credentials``, ``client_id`` and
  ``client_secret`` (form-encoded) issues a token; wrong credentials are 400 ``invalid_client``.
- ``GET /services/data/vXX.X/query`` and ``/queryAll`` with ``q`` (``SELECT <fields> FROM
  Contact|Lead [WHERE SystemModstamp >= <datetime>] [ORDER BY SystemModstamp ASC]``; an unknown
  field is 400 ``INVALID_FIELD``): at most ``batch_size`` records per response, then
  ``nextRecordsUrl`` (``/services/data/vXX.X/query/<locator>-<offset>``); ``queryAll`` also
  returns deleted records (``IsDeleted`` true), ``query`` does not.
- Datetimes as the API writes them: ``2026-11-30T08:00:00.000+0000``.
Faults on demand: queued status codes (429 carries ``Retry-After: 1``) and ``"drop"``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

from tests.sources.fake_http import Reply, Request, serve

VERSION = "v62.0"
FIELDS = {
    "Contact": {
        "Id",
        "Email",
        "FirstName",
        "LastName",
        "HasOptedOutOfEmail",
        "LeadSource",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
        "MailingCity",
        "MailingCountry",
    },
    "Lead": {
        "Id",
        "Email",
        "FirstName",
        "LastName",
        "HasOptedOutOfEmail",
        "LeadSource",
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "IsDeleted",
        "City",
        "Country",
        "Status",
        "IsConverted",
        "ConvertedContactId",
    },
}
SOQL = re.compile(
    r"^SELECT (?P<fields>[\w, ]+) FROM (?P<object>\w+)"
    r"(?: WHERE SystemModstamp (?P<op>>=|>) (?P<since>\S+))?"
    r"(?: ORDER BY SystemModstamp ASC)?$"
)


def sf_time(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _ms(text: str) -> int:
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text.replace("Z", "+00:00"))
    return int(datetime.fromisoformat(text).timestamp() * 1000)


@dataclass
class FakeSalesforce:
    token: str = "00Dxx0000000001!AQ0AQ.test"
    client_id: str = "3MVG9connected.app"
    client_secret: str = "connected-app-secret"
    batch_size: int = 2000
    records: dict[str, dict[str, dict]] = field(default_factory=lambda: {"Contact": {}, "Lead": {}})
    faults: deque = field(default_factory=deque)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    issued: set[str] = field(default_factory=set)
    _cursors: dict[str, list[dict]] = field(default_factory=dict)
    url: str = ""

    def put(self, sobject: str, record_id: str, modified_ms: int, **fields: object) -> dict:
        existing = self.records[sobject].get(record_id)
        record = {
            "attributes": {
                "type": sobject,
                "url": f"/services/data/{VERSION}/sobjects/{sobject}/{record_id}",
            },
            "Id": record_id,
            "HasOptedOutOfEmail": False,
            "IsDeleted": False,
            "CreatedDate": existing["CreatedDate"] if existing else sf_time(modified_ms),
            **({k: v for k, v in existing.items() if k != "attributes"} if existing else {}),
            **fields,
            "LastModifiedDate": sf_time(modified_ms),
            "SystemModstamp": sf_time(modified_ms),
        }
        if sobject == "Lead":
            record.setdefault("IsConverted", False)
        self.records[sobject][record_id] = record
        return record

    def delete(self, sobject: str, record_id: str, modified_ms: int) -> None:
        self.put(sobject, record_id, modified_ms, IsDeleted=True)

    def answer(self, request: Request) -> Reply:
        reply = self._answer(request)
        self.log.append((request.method, request.path, reply.status))
        return reply

    def _answer(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/services/oauth2/token":
            return self._token(request)
        bearer = request.headers.get("authorization", "")
        if bearer not in {f"Bearer {t}" for t in {self.token, *self.issued}}:
            body = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            return Reply(401, json.dumps(body).encode())
        if self.faults:
            fault = self.faults.popleft()
            if fault == "drop":
                return Reply(200, b'{"records": [' + b" " * 400 + b"]}", cut_off=True)
            headers = {"Retry-After": "1"} if fault == 429 else {}
            body = [{"message": "injected", "errorCode": "SERVER_UNAVAILABLE"}]
            return Reply(fault, json.dumps(body).encode(), headers)
        base = f"/services/data/{VERSION}/"
        if request.method == "GET" and request.path in (base + "query", base + "queryAll"):
            return self._query(request.query.get("q", ""), request.path.endswith("All"))
        if request.method == "GET" and request.path.startswith(base + "query/"):
            locator, _, offset = request.path.rsplit("/", 1)[-1].rpartition("-")
            if locator not in self._cursors:
                body = [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]
                return Reply(400, json.dumps(body).encode())
            return self._page(locator, int(offset))
        body = [{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]
        return Reply(404, json.dumps(body).encode())

    def _token(self, request: Request) -> Reply:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        if (
            form.get("grant_type") != "client_credentials"
            or form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            body = {"error": "invalid_client", "error_description": "invalid client credentials"}
            return Reply(400, json.dumps(body).encode())
        token = f"00Dxx!{uuid.uuid4().hex}"
        self.issued.add(token)
        body = {
            "access_token": token,
            "instance_url": self.url,
            "token_type": "Bearer",
            "issued_at": str(int(datetime.now(UTC).timestamp() * 1000)),
            "signature": "fake",
        }
        return Reply(200, json.dumps(body).encode())

    def _query(self, soql: str, all_rows: bool) -> Reply:
        match = SOQL.match(soql.strip())
        if not match:
            body = [{"message": f"unexpected SOQL: {soql}", "errorCode": "MALFORMED_QUERY"}]
            return Reply(400, json.dumps(body).encode())
        sobject = match["object"]
        fields = [f.strip() for f in match["fields"].split(",")]
        unknown = [f for f in fields if f not in FIELDS.get(sobject, set())]
        if unknown:
            message = f"No such column '{unknown[0]}' on entity '{sobject}'"
            return Reply(
                400, json.dumps([{"message": message, "errorCode": "INVALID_FIELD"}]).encode()
            )
        rows = [r for r in self.records[sobject].values() if all_rows or not r["IsDeleted"]]
        if match["since"]:
            since = _ms(match["since"])
            strict = match["op"] == ">"
            rows = [
                r
                for r in rows
                if (
                    _ms(r["SystemModstamp"]) > since
                    if strict
                    else _ms(r["SystemModstamp"]) >= since
                )
            ]
        rows.sort(key=lambda r: (_ms(r["SystemModstamp"]), r["Id"]))
        shaped = [{"attributes": r["attributes"], **{f: r.get(f) for f in fields}} for r in rows]
        locator = f"01g{uuid.uuid4().hex[:15]}"
        self._cursors[locator] = shaped
        return self._page(locator, 0)

    def _page(self, locator: str, offset: int) -> Reply:
        rows = self._cursors[locator]
        page = rows[offset : offset + self.batch_size]
        done = offset + self.batch_size >= len(rows)
        body: dict = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            body["nextRecordsUrl"] = (
                f"/services/data/{VERSION}/query/{locator}-{offset + self.batch_size}"
            )
        return Reply(200, json.dumps(body).encode())

    @contextmanager
    def serve(self) -> Iterator[FakeSalesforce]:
        with serve(lambda request: self.answer(request)) as url:
            self.url = url
            yield self
