"""Local fakes of three ESPs' APIs, each enforcing the vendor's documented contract and keeping
the state a sync leaves behind.

- **Mailchimp Marketing API v3** (``/3.0``): HTTP Basic with any user name and the API key;
  ``POST /lists/{list_id}`` batch subscribe or update (at most 500 members; ``status``,
  ``merge_fields`` among the audience's merge tags, ``tags``; ``update_existing``), answering
  200 with ``new_members``, ``updated_members`` and per-member ``errors`` (an address in a
  compliance state cannot be subscribed again); ``POST
  /lists/{list_id}/members/{subscriber_hash}/tags`` (the hash is the MD5 of the lower-cased
  address; 404 for a member it does not know); ``POST
  /lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent`` (204; the address can
  never be imported again; 404 for a member it does not know).
- **Klaviyo** (``/api``): ``Authorization: Klaviyo-API-Key <key>`` and a ``revision`` header
  (``YYYY-MM-DD``), JSON:API bodies; bulk profile import jobs (at most 10,000 profiles; the
  job, its import errors and its profiles' ids), list membership through
  ``/api/lists/{id}/relationships/profiles`` (POST adds, DELETE removes; at most 1,000 ids),
  suppression through bulk suppression jobs, and ``POST /api/data-privacy-deletion-jobs``
  (exactly one of a profile's email, phone number or id; 202, every matching profile deleted).
- **Braze** ``POST /users/track``: ``Authorization: Bearer <key>``, at most 75 attribute
  objects, each naming its user (``external_id``); the custom array ``inboxgraph_segments``
  takes ``{"add": [...], "remove": [...]}``; ``email_subscribe`` is a subscription state.
  Answers 201 with ``attributes_processed`` and per-object ``errors``. ``POST /users/delete``
  takes at most 50 identifiers of exactly one kind (``external_ids``, ``email_addresses``, ...)
  and answers 201 with the users ``deleted``.
Each takes faults on demand (queued status codes, 429 with ``Retry-After: 1``, and ``"drop"``:
the connection drops before the answer, after the request was received and applied or not, as
chosen) and logs every request it answered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.sources.fake_http import Reply, Request, serve

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
MERGE_TAGS = {"FNAME", "LNAME", "TOPCAT", "PRODUCTS", "LTVTIER"}
BRAZE_IDENTIFIERS = (
    "external_ids",
    "user_aliases",
    "braze_ids",
    "email_addresses",
    "phone_numbers",
)


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 (Mailchimp's id)


@dataclass
class _Fake:
    faults: deque = field(default_factory=deque)
    log: list[tuple[str, str, int]] = field(default_factory=list)
    bodies: list[tuple[str, dict]] = field(default_factory=list)  # (path, body) accepted
    down: bool = False
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Request) -> Reply:
        with self._lock:
            reply = self._checked(request)
            self.log.append((request.method, request.path, reply.status))
            return reply

    def _checked(self, request: Request) -> Reply:
        if self.down:
            return Reply(503, b'{"message": "service unavailable"}')
        refusal = self.refuse(request)
        if refusal is not None:
            return refusal
        if self.faults:
            fault = self.faults.popleft()
            if fault == "drop":  # the request is lost with the connection: nothing applied
                return Reply(200, b'{"partial": ' + b" " * 200 + b"}", cut_off=True)
            if fault == "drop-after":  # applied, but the answer never arrives
                self.handle(request)
                return Reply(200, b'{"partial": ' + b" " * 200 + b"}", cut_off=True)
            headers = {"Retry-After": "1"} if fault == 429 else {}
            return Reply(fault, json.dumps({"message": f"injected {fault}"}).encode(), headers)
        return self.handle(request)

    def refuse(self, request: Request) -> Reply | None:
        raise NotImplementedError

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    @contextmanager
    def serve(self) -> Iterator:
        with serve(lambda request: self.answer(request)) as url:
            self.url = url
            yield self


# ---------------------------------------------------------------------- Mailchimp
@dataclass
class FakeMailchimp(_Fake):
    api_key: str = "0123456789abcdef0123456789abcdef-us21"
    list_id: str = "a1b2c3d4e5"
    members: dict[str, dict] = field(default_factory=dict)  # subscriber hash -> member
    compliance: set[str] = field(default_factory=set)  # addresses that cannot be resubscribed

    def refuse(self, request: Request) -> Reply | None:
        header = request.headers.get("authorization", "")
        try:
            _, _, key = base64.b64decode(header.removeprefix("Basic ")).decode().partition(":")
        except ValueError:
            key = ""
        if not header.startswith("Basic ") or key != self.api_key:
            return _mailchimp_error(401, "API Key Invalid", "Your API key may be invalid.")
        return None

    def handle(self, request: Request) -> Reply:
        prefix = f"/3.0/lists/{self.list_id}"
        body = json.loads(request.body or b"{}")
        if request.method == "POST" and request.path == prefix:
            return self._batch(body)
        deletion = prefix + r"/members/([0-9a-f]{32})/actions/delete-permanent"
        match = re.fullmatch(deletion, request.path)
        if request.method == "POST" and match:
            member = self.members.pop(match[1], None)
            if member is None:
                return _mailchimp_error(404, "Resource Not Found", "The member does not exist.")
            self.compliance.add(member["email_address"].lower())
            self.bodies.append((request.path, body))
            return Reply(204)
        match = re.fullmatch(prefix + r"/members/([0-9a-f]{32})/tags", request.path)
        if request.method == "POST" and match:
            member = self.members.get(match[1])
            if member is None:
                return _mailchimp_error(404, "Resource Not Found", "The member does not exist.")
            for tag in body.get("tags", []):
                if tag.get("status") not in ("active", "inactive") or not tag.get("name"):
                    return _mailchimp_error(400, "Invalid Resource", "tags need name and status")
                (member["tags"].add if tag["status"] == "active" else member["tags"].discard)(
                    tag["name"]
                )
            self.bodies.append((request.path, body))
            return Reply(204)
        return _mailchimp_error(404, "Resource Not Found", f"{request.method} {request.path}")

    def _batch(self, body: dict) -> Reply:
        members = body.get("members")
        if not isinstance(members, list) or len(members) > 500:
            return _mailchimp_error(400, "Invalid Resource", "members: at most 500 per call")
        self.bodies.append(("batch", body))
        created, updated, errors = [], [], []
        for given in members:
            email = str(given.get("email_address", "")).strip().lower()
            status = given.get("status")
            unknown = set(given.get("merge_fields") or {}) - MERGE_TAGS
            if not EMAIL.match(email):
                errors.append(_member_error(email, "Invalid email address", "ERROR_GENERIC"))
                continue
            if status not in ("subscribed", "unsubscribed", "cleaned", "pending", "transactional"):
                errors.append(_member_error(email, "Invalid status", "ERROR_GENERIC"))
                continue
            if unknown:
                errors.append(
                    _member_error(email, f"Merge fields invalid: {unknown}", "ERROR_GENERIC")
                )
                continue
            if status == "subscribed" and email in self.compliance:
                reason = (
                    f"{email} is in a compliance state due to unsubscribe, bounce, or "
                    "compliance review and cannot be subscribed."
                )
                errors.append(_member_error(email, reason, "ERROR_CONTACT_EXISTS"))
                continue
            key = subscriber_hash(email)
            existing = self.members.get(key)
            if existing is not None and not body.get("update_existing"):
                errors.append(
                    _member_error(
                        email, f"{email} is already a list member", "ERROR_CONTACT_EXISTS"
                    )
                )
                continue
            member = existing or {"email_address": email, "tags": set(), "merge_fields": {}}
            member["status"] = status
            member["merge_fields"].update(given.get("merge_fields") or {})
            member["tags"].update(given.get("tags") or [])
            if status == "unsubscribed":
                self.compliance.add(email)
            self.members[key] = member
            shown = {"id": key, "email_address": email, "status": status}
            (updated if existing else created).append(shown)
        answer = {
            "new_members": created,
            "updated_members": updated,
            "errors": errors,
            "total_created": len(created),
            "total_updated": len(updated),
            "error_count": len(errors),
        }
        return Reply(200, json.dumps(answer).encode())

    def audience(self) -> dict[str, set[str]]:
        """Subscribed members' addresses -> their tags (non-empty)."""
        return {
            m["email_address"]: set(m["tags"])
            for m in self.members.values()
            if m["status"] == "subscribed" and m["tags"]
        }


def _mailchimp_error(status: int, title: str, detail: str) -> Reply:
    body = {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/problem+json"})


def _member_error(email: str, error: str, code: str) -> dict:
    return {
        "email_address": email,
        "error": error,
        "error_code": code,
        "field": "",
        "field_message": "",
    }


# ---------------------------------------------------------------------- Klaviyo
@dataclass
class FakeKlaviyo(_Fake):
    api_key: str = "pk_0123456789abcdef0123456789abcdef01"
    list_id: str = "Xy7Kp2"
    profiles: dict[str, dict] = field(default_factory=dict)  # profile id -> profile
    list_members: set[str] = field(default_factory=set)  # profile ids on the list
    suppressed: set[str] = field(default_factory=set)  # addresses
    jobs: dict[str, dict] = field(default_factory=dict)
    revisions: set[str] = field(default_factory=set)

    def refuse(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") != f"Klaviyo-API-Key {self.api_key}":
            return _klaviyo_error(401, "not_authenticated", "Missing or invalid private key.")
        revision = request.headers.get("revision", "")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.pre)?", revision):
            return _klaviyo_error(400, "invalid_revision", "A valid revision header is required.")
        self.revisions.add(revision)
        return None

    def _by_email(self, email: str) -> str:
        for profile_id, profile in self.profiles.items():
            if profile["email"] == email:
                return profile_id
        profile_id = "01" + uuid.uuid4().hex[:24].upper()
        self.profiles[profile_id] = {"email": email, "properties": {}}
        return profile_id

    def handle(self, request: Request) -> Reply:
        body = json.loads(request.body or b"{}")
        path = request.path
        if request.method == "POST" and path == "/api/profile-bulk-import-jobs":
            return self._import(body)
        match = re.fullmatch(r"/api/profile-bulk-import-jobs/([^/]+)(/.*)?", path)
        if request.method == "GET" and match and match[1] in self.jobs:
            job = self.jobs[match[1]]
            if match[2] is None:
                job["status"] = "complete"
                return Reply(200, json.dumps({"data": _job_resource(match[1], job)}).encode())
            if match[2] == "/import-errors":
                return Reply(
                    200, json.dumps({"data": job["errors"], "links": {"next": None}}).encode()
                )
            if match[2] == "/profiles":
                data = [
                    {
                        "type": "profile",
                        "id": pid,
                        "attributes": {"email": self.profiles[pid]["email"]},
                    }
                    for pid in job["profile_ids"]
                ]
                return Reply(200, json.dumps({"data": data, "links": {"next": None}}).encode())
            if match[2] == "/relationships/profiles":
                data = [{"type": "profile", "id": pid} for pid in job["profile_ids"]]
                return Reply(200, json.dumps({"data": data, "links": {"next": None}}).encode())
        match = re.fullmatch(r"/api/lists/([^/]+)/relationships/profiles", path)
        if match and request.method in ("POST", "DELETE"):
            if match[1] != self.list_id:
                return _klaviyo_error(404, "not_found", "list not found")
            data = body.get("data")
            if not isinstance(data, list) or len(data) > 1000:
                return _klaviyo_error(400, "invalid", "data: at most 1000 profiles")
            ids = [d.get("id") for d in data if d.get("type") == "profile"]
            if len(ids) != len(data) or any(i not in self.profiles for i in ids):
                return _klaviyo_error(400, "invalid", "unknown profile")
            self.bodies.append((f"{request.method} {path}", body))
            (
                self.list_members.update
                if request.method == "POST"
                else self.list_members.difference_update
            )(ids)
            return Reply(204)
        if request.method == "POST" and path == "/api/data-privacy-deletion-jobs":
            return self._delete(body)
        if request.method == "POST" and path == "/api/profile-suppression-bulk-create-jobs":
            profiles = body["data"]["attributes"]["profiles"]["data"]
            if not 0 < len(profiles) <= 100:
                return _klaviyo_error(400, "invalid", "1 to 100 profiles per suppression job")
            self.bodies.append((path, body))
            self.suppressed.update(p["attributes"]["email"].lower() for p in profiles)
            job = {
                "type": "profile-suppression-bulk-create-job",
                "id": uuid.uuid4().hex,
                "attributes": {"status": "queued"},
            }
            return Reply(202, json.dumps({"data": job}).encode())
        return _klaviyo_error(404, "not_found", f"{request.method} {path}")

    def _import(self, body: dict) -> Reply:
        data = body.get("data") or {}
        if data.get("type") != "profile-bulk-import-job":
            return _klaviyo_error(400, "invalid", "data.type must be profile-bulk-import-job")
        profiles = (data.get("attributes") or {}).get("profiles", {}).get("data")
        if not isinstance(profiles, list) or not 0 < len(profiles) <= 10_000:
            return _klaviyo_error(400, "invalid", "1 to 10,000 profiles per job")
        self.bodies.append(("import", body))
        job_id = uuid.uuid4().hex
        errors, ids = [], []
        for n, profile in enumerate(profiles):
            attributes = profile.get("attributes") or {}
            email = str(attributes.get("email", "")).strip().lower()
            if profile.get("type") != "profile" or not EMAIL.match(email):
                errors.append(
                    {
                        "type": "import-error",
                        "id": uuid.uuid4().hex,
                        "attributes": {
                            "code": "invalid",
                            "title": "Invalid input.",
                            "detail": f"Invalid email address: {email!r}",
                            "source": {
                                "pointer": f"/data/attributes/profiles/data/{n}/attributes/email"
                            },
                            "original_payload": attributes,
                        },
                    }
                )
                continue
            profile_id = self._by_email(email)
            stored = self.profiles[profile_id]
            stored.update({k: v for k, v in attributes.items() if k != "properties"})
            stored["properties"].update(attributes.get("properties") or {})
            ids.append(profile_id)
        self.jobs[job_id] = {
            "status": "queued",
            "total": len(profiles),
            "errors": errors,
            "profile_ids": ids,
        }
        return Reply(202, json.dumps({"data": _job_resource(job_id, self.jobs[job_id])}).encode())

    def _delete(self, body: dict) -> Reply:
        data = body.get("data") or {}
        profile = ((data.get("attributes") or {}).get("profile") or {}).get("data") or {}
        given = {k: v for k, v in (profile.get("attributes") or {}).items() if v}
        if data.get("type") != "data-privacy-deletion-job" or len(given) != 1:
            return _klaviyo_error(400, "invalid", "exactly one of email, phone_number or id")
        ((kind, value),) = given.items()
        self.bodies.append(("deletion", body))
        for profile_id in [
            pid
            for pid, p in self.profiles.items()
            if (pid if kind == "id" else str(p.get(kind, "")).lower()) == str(value).lower()
        ]:
            del self.profiles[profile_id]
            self.list_members.discard(profile_id)
        return Reply(202)

    def audience(self) -> dict[str, set[str]]:
        """Addresses on the list and not suppressed -> their segments."""
        return {
            p["email"]: set(p["properties"].get("inboxgraph_segments") or [])
            for pid, p in self.profiles.items()
            if pid in self.list_members and p["email"] not in self.suppressed
        }


def _job_resource(job_id: str, job: dict) -> dict:
    failed = len(job["errors"])
    return {
        "type": "profile-bulk-import-job",
        "id": job_id,
        "attributes": {
            "status": job["status"],
            "created_at": "2026-12-01T00:00:00+00:00",
            "total_count": job["total"],
            "completed_count": job["total"] - failed if job["status"] == "complete" else 0,
            "failed_count": failed if job["status"] == "complete" else 0,
            "completed_at": None,
            "expires_at": None,
            "started_at": None,
        },
    }


def _klaviyo_error(status: int, code: str, detail: str) -> Reply:
    body = {
        "errors": [
            {
                "id": str(uuid.uuid4()),
                "status": status,
                "code": code,
                "title": code.replace("_", " "),
                "detail": detail,
                "source": {"pointer": "/data/"},
            }
        ]
    }
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/vnd.api+json"})


# ---------------------------------------------------------------------- Braze
@dataclass
class FakeBraze(_Fake):
    api_key: str = "braze-rest-key-0123"
    users: dict[str, dict] = field(default_factory=dict)  # external id -> attributes
    email_states: dict[str, str] = field(default_factory=dict)  # /email/status, by address

    def refuse(self, request: Request) -> Reply | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, b'{"message": "Invalid API key: the REST API key is unknown"}')
        return None

    def handle(self, request: Request) -> Reply:
        if request.method == "POST" and request.path == "/email/status":
            return self._email_status(json.loads(request.body or b"{}"))
        if request.method == "POST" and request.path == "/users/delete":
            return self._delete(json.loads(request.body or b"{}"))
        if request.method != "POST" or request.path != "/users/track":
            return Reply(404, b'{"message": "not found"}')
        body = json.loads(request.body or b"{}")
        attributes = body.get("attributes") or []
        if len(attributes) > 75:
            return Reply(400, b'{"message": "Too many attributes: at most 75 per request"}')
        self.bodies.append(("track", body))
        errors = []
        for n, given in enumerate(attributes):
            user = given.get("external_id")
            if not user:
                errors.append(
                    {
                        "type": "'external_id', 'braze_id', 'user_alias' or 'email' is required",
                        "input_array": "attributes",
                        "index": n,
                    }
                )
                continue
            email = given.get("email")
            if email is not None and not EMAIL.match(str(email)):
                errors.append(
                    {"type": "Invalid email address", "input_array": "attributes", "index": n}
                )
                continue
            stored = self.users.setdefault(user, {"inboxgraph_segments": set()})
            for key, value in given.items():
                if key == "inboxgraph_segments" and isinstance(value, dict):
                    stored[key].update(value.get("add") or [])
                    stored[key].difference_update(value.get("remove") or [])
                elif key != "external_id":
                    stored[key] = value
        answer: dict = {"message": "success", "attributes_processed": len(attributes) - len(errors)}
        if errors:
            answer["errors"] = errors
        return Reply(201, json.dumps(answer).encode())

    def _delete(self, body: dict) -> Reply:
        kinds = [k for k in BRAZE_IDENTIFIERS if body.get(k)]
        if len(kinds) != 1 or not isinstance(body[kinds[0]], list) or len(body[kinds[0]]) > 50:
            return Reply(400, b'{"message": "one kind of identifier, at most 50 of them"}')
        self.bodies.append(("delete", body))
        wanted = {str(v).lower() for v in body[kinds[0]]}
        gone = [
            user
            for user, attributes in self.users.items()
            if (user if kinds[0] == "external_ids" else str(attributes.get("email", "")).lower())
            in wanted
        ]
        for user in gone:
            del self.users[user]
        return Reply(201, json.dumps({"deleted": len(gone), "message": "success"}).encode())

    def _email_status(self, body: dict) -> Reply:
        emails = body.get("email")
        emails = [emails] if isinstance(emails, str) else emails
        state = body.get("subscription_state")
        if not isinstance(emails, list) or not 0 < len(emails) <= 50:
            return Reply(400, b'{"message": "email: 1 to 50 addresses"}')
        if state not in ("subscribed", "unsubscribed", "opted_in"):
            return Reply(400, b'{"message": "subscription_state is invalid"}')
        self.bodies.append(("status", body))
        self.email_states.update({str(e).lower(): state for e in emails})
        for user in self.users.values():
            if str(user.get("email", "")).lower() in self.email_states:
                user["email_subscribe"] = self.email_states[str(user["email"]).lower()]
        return Reply(201, b'{"message": "success"}')

    def audience(self) -> dict[str, set[str]]:
        """Emailable users' addresses -> their segments (non-empty)."""
        return {
            u["email"]: set(u["inboxgraph_segments"])
            for u in self.users.values()
            if u.get("email")
            and u["inboxgraph_segments"]
            and u.get("email_subscribe") != "unsubscribed"
            and self.email_states.get(str(u["email"]).lower()) != "unsubscribed"
        }
