"""HubSpot and Salesforce as live sources: their APIs' response pages saved into the landing
zone, where the files mode lands them (so the API and an export give equal lake tables).

Both pulls run on dlt's REST client (its paginators, auth and retrying session: 429 waits for
``Retry-After``, 5xx and dropped connections are retried with backoff). Each page is saved the
moment it arrives, committed by a rename, under a name that carries the newest modification
time it holds (``api-<epoch ms>-...json``). The newest saved name is where the next pull
resumes, filtering inclusively: a pull killed midway keeps every saved page, and the records
read twice at the boundary are the same text, which the lake lands once (by fingerprint).

- HubSpot: ``POST /crm/v3/objects/contacts/search`` filtered ``lastmodifieddate GTE`` the cursor
  and sorted by it, ``after`` paging. A search returns at most 10,000 results, so a window that
  reaches the ceiling is split: a new search starts at the last modification time read.
  Archived contacts come from ``GET /crm/v3/objects/contacts?archived=true`` (no search
  filter exists for them); those archived since the last pull are saved.
- Salesforce: ``GET /services/data/vXX.X/queryAll`` with a SOQL query per object (Contact,
  Lead) ``WHERE SystemModstamp >= cursor ORDER BY SystemModstamp``, following
  ``nextRecordsUrl``; ``queryAll`` returns deleted records too (``IsDeleted``). A token, or the
  OAuth client-credentials flow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import orjson
import requests
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth, OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.paginators import (
    JSONLinkPaginator,
    JSONResponseCursorPaginator,
)

from inboxgraph.resources.http import retrying_session
from inboxgraph.resources.sources import LandingResource
from inboxgraph.storage import write_bytes_atomic

HUBSPOT_API_URL = "https://api.hubapi.com"
HUBSPOT_TOKEN_VARIABLE = "INBOXGRAPH_HUBSPOT_TOKEN"
HUBSPOT_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "city",
    "country",
    "hs_email_optout",
    "lifecyclestage",
    "createdate",
    "lastmodifieddate",
)
SALESFORCE_API_VERSION = "v62.0"
SALESFORCE_TOKEN_VARIABLE = "INBOXGRAPH_SALESFORCE_TOKEN"
COMMON_FIELDS = (
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
)
SALESFORCE_OBJECTS = {
    "contact": ("Contact", (*COMMON_FIELDS, "MailingCity", "MailingCountry")),
    "lead": (
        "Lead",
        (*COMMON_FIELDS, "City", "Country", "Status", "IsConverted", "ConvertedContactId"),
    ),
}
SAVED = re.compile(r"^(?P<kind>api|archived)-(?P<cursor>\d{13})-")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(text: object) -> int | None:
    """An API timestamp (ISO 8601, ``Z`` or ``+0000``) as epoch milliseconds."""
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int((moment - EPOCH).total_seconds() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _CrmPull(LandingResource):
    """What both pulls share: where pages are saved, the retrying session, the cursor."""

    # Per request (dlt's session): waits of 1, 2, 4 and 8 s. A vendor still down after them
    # fails the pull; the next scheduled pull resumes where this one stopped.
    max_attempts: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 120.0

    def session(self) -> requests.Session:
        return retrying_session(self.max_attempts, self.backoff_seconds, self.timeout_seconds)

    @staticmethod
    def cursor(folder: Path, kind: str = "api") -> int | None:
        """The newest modification time (epoch ms) among the pages a pull saved in
        ``folder``, read from their names."""
        if not folder.is_dir():
            return None
        cursors = [
            int(m["cursor"])
            for p in folder.glob("*.json")
            if (m := SAVED.match(p.name)) and m["kind"] == kind
        ]
        return max(cursors, default=None)

    @staticmethod
    def save(folder: Path, kind: str, cursor: int, body: bytes) -> Path:
        """One page, committed whole (written aside, then renamed)."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = folder / f"{kind}-{cursor:013d}-{stamp}.json"
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(path, body)
        return path


def _error_hook(vendor: str, variable: str) -> dict[str, list[Callable[..., None]]]:
    """Response hooks: 401/403 fail the pull at once, naming the variable; any other error
    raises requests' HTTPError, which dlt's session retries for 429 (after ``Retry-After``) and
    5xx, and raises once its attempts are spent."""

    def check(response: requests.Response, *args: object, **kwargs: object) -> None:
        if response.status_code in (401, 403):
            raise dg.Failure(
                f"{vendor} refused the credentials ({response.status_code}: "
                f"{response.text[:200]}); check {variable}",
                allow_retries=False,
            )
        if response.status_code >= 400:
            raise requests.HTTPError(
                f"{vendor} answered {response.status_code} to {response.request.method} "
                f"{response.request.path_url.split('?')[0]}: {response.text[:300]}",
                response=response,
            )

    return {"response": [check]}


def _failing_clearly(vendor: str, pull: Callable[[], dict]) -> dict:
    """An HTTP error or an unreachable server left after dlt's retries: one sentence."""
    try:
        return pull()
    except requests.HTTPError as error:
        raise dg.Failure(f"the {vendor} pull failed: {error}") from None
    except requests.exceptions.RequestException as error:
        raise dg.Failure(f"the {vendor} pull could not reach the API: {error}") from None


class HubspotPull(_CrmPull):
    """Pulls HubSpot contacts into ``<landing>/hubspot/contacts/`` (live mode: on when
    INBOXGRAPH_HUBSPOT_TOKEN is set)."""

    token: str = ""
    api_url: str = ""
    page_size: int = 100  # the search endpoint takes at most 200
    search_ceiling: int = 10_000

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    @property
    def folder(self) -> Path:
        return self.local_landing("the CRM pulls save") / "hubspot" / "contacts"

    def pull(self, log: Callable[[str], None] = print) -> dict[str, object]:
        """Save the contacts changed (and archived) since the last pull; returns counts."""
        return _failing_clearly("HubSpot", lambda: self._pull(log))

    def _pull(self, log: Callable[[str], None]) -> dict[str, object]:
        client = RESTClient(
            base_url=(self.api_url or HUBSPOT_API_URL).rstrip("/"),
            auth=BearerTokenAuth(token=self.token),
            session=self.session(),
        )
        counts = {"contacts": 0, "archived": 0, "pages": 0, "searches": 0}
        since = self.cursor(self.folder)
        log(f"hubspot: contacts modified since {_iso(since) if since else 'the beginning'}")
        while True:
            counts["searches"] += 1
            newest, at_ceiling = self._search(client, since, counts)
            if not at_ceiling:
                break
            if newest == since:
                raise dg.Failure(
                    f"more than {self.search_ceiling} HubSpot contacts share the modification "
                    f"time {_iso(since or 0)}: a search cannot page past them",
                    allow_retries=False,
                )
            log(
                f"hubspot: the search reached its {self.search_ceiling}-result ceiling; "
                f"searching again from {_iso(newest or 0)}"
            )
            since = newest
        self._archived(client, counts)
        log(
            f"hubspot: {counts['contacts']} contacts, {counts['archived']} archived, "
            f"{counts['pages']} pages saved"
        )
        return {**counts, "cursor": _iso(self.cursor(self.folder) or 0)}

    def _search(
        self, client: RESTClient, since: int | None, counts: dict[str, int]
    ) -> tuple[int | None, bool]:
        """One search from ``since``, each page saved as it arrives: (the newest modification
        time saved, whether the search stopped at the ceiling with pages left)."""
        body: dict[str, object] = {
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
            "properties": list(HUBSPOT_PROPERTIES),
            "limit": self.page_size,
        }
        if since is not None:
            rule = {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(since)}
            body["filterGroups"] = [{"filters": [rule]}]
        read, newest = 0, since
        pages = client.paginate(
            "/crm/v3/objects/contacts/search",
            method="POST",
            json=body,
            paginator=JSONResponseCursorPaginator(
                cursor_path="paging.next.after", cursor_body_path="after"
            ),
            data_selector="results",
            hooks=_error_hook("HubSpot", HUBSPOT_TOKEN_VARIABLE),
        )
        for page in pages:
            read += len(page)
            for contact in page:
                properties = contact.get("properties") or {}
                stamp = epoch_ms(properties.get("lastmodifieddate") or contact.get("updatedAt"))
                if stamp is not None and (newest is None or stamp > newest):
                    newest = stamp
            if page:
                counts["pages"] += 1
                counts["contacts"] += len(page)
                self.save(self.folder, "api", newest or 0, page.response.content)
            if page.paginator.has_next_page and read + self.page_size > self.search_ceiling:
                return newest, True
        return newest, False

    def _archived(self, client: RESTClient, counts: dict[str, int]) -> None:
        """Contacts archived since the newest archive saved (the list endpoint pages through
        every archived contact; only the new ones are saved)."""
        since = self.cursor(self.folder, "archived") or 0
        pages = client.paginate(
            "/crm/v3/objects/contacts",
            params={
                "archived": "true",
                "limit": self.page_size,
                "properties": ",".join(HUBSPOT_PROPERTIES),
            },
            paginator=JSONResponseCursorPaginator(
                cursor_path="paging.next.after", cursor_param="after"
            ),
            data_selector="results",
            hooks=_error_hook("HubSpot", HUBSPOT_TOKEN_VARIABLE),
        )
        fresh = [c for page in pages for c in page if (epoch_ms(c.get("archivedAt")) or 0) >= since]
        if fresh:
            newest = max(epoch_ms(c.get("archivedAt")) or 0 for c in fresh)
            counts["pages"] += 1
            counts["archived"] += len(fresh)
            self.save(self.folder, "archived", newest, orjson.dumps({"results": fresh}))


class SalesforcePull(_CrmPull):
    """Pulls Salesforce Contacts and Leads into ``<landing>/salesforce/<contact|lead>/`` (live
    mode: on when INBOXGRAPH_SALESFORCE_INSTANCE_URL is set, with a token or a connected app's
    client id and secret for the client-credentials flow)."""

    instance_url: str = ""
    token: str = ""
    client_id: str = ""
    client_secret: str = ""
    api_version: str = SALESFORCE_API_VERSION

    @property
    def enabled(self) -> bool:
        return bool(self.instance_url and (self.token or (self.client_id and self.client_secret)))

    def folder(self, name: str) -> Path:
        return self.local_landing("the CRM pulls save") / "salesforce" / name

    def pull(self, log: Callable[[str], None] = print) -> dict[str, object]:
        """Save the Contacts and Leads changed (or deleted) since the last pull."""
        return _failing_clearly("Salesforce", lambda: self._pull(log))

    def _auth(self, session: requests.Session) -> BearerTokenAuth | OAuth2ClientCredentials:
        if self.token:
            return BearerTokenAuth(token=self.token)
        auth = OAuth2ClientCredentials(
            access_token_url=f"{self.instance_url.rstrip('/')}/services/oauth2/token",
            client_id=self.client_id,
            client_secret=self.client_secret,
            session=session,
        )
        try:
            auth.obtain_token()
        except requests.HTTPError as error:
            raise dg.Failure(
                f"Salesforce refused the connected app ({error.response.status_code}: "
                f"{error.response.text[:200]}); check INBOXGRAPH_SALESFORCE_CLIENT_ID and "
                "INBOXGRAPH_SALESFORCE_CLIENT_SECRET",
                allow_retries=False,
            ) from None
        return auth

    def _pull(self, log: Callable[[str], None]) -> dict[str, object]:
        session = self.session()
        client = RESTClient(
            base_url=self.instance_url.rstrip("/"), auth=self._auth(session), session=session
        )
        counts: dict[str, object] = {}
        for name, (sobject, fields) in SALESFORCE_OBJECTS.items():
            saved = self._query(client, name, sobject, fields)
            log(
                f"salesforce {sobject}: {saved['records']} records ({saved['deleted']} deleted), "
                f"{saved['pages']} pages saved"
            )
            counts[sobject] = {**saved, "cursor": _iso(self.cursor(self.folder(name)) or 0)}
        return counts

    def _query(
        self, client: RESTClient, name: str, sobject: str, fields: tuple[str, ...]
    ) -> dict[str, int]:
        folder = self.folder(name)
        since = self.cursor(folder)
        soql = f"SELECT {', '.join(fields)} FROM {sobject}"
        if since is not None:
            soql += f" WHERE SystemModstamp >= {_iso(since)}"
        soql += " ORDER BY SystemModstamp ASC"
        pages = client.paginate(
            f"/services/data/{self.api_version}/queryAll",
            params={"q": soql},
            paginator=JSONLinkPaginator(next_url_path="nextRecordsUrl"),
            data_selector="records",
            hooks=_error_hook("Salesforce", SALESFORCE_TOKEN_VARIABLE),
        )
        saved = {"records": 0, "deleted": 0, "pages": 0}
        newest = since or 0
        for page in pages:
            if not page:
                continue
            for record in page:
                stamp = epoch_ms(record.get("SystemModstamp"))
                newest = max(newest, stamp or 0)
            saved["pages"] += 1
            saved["records"] += len(page)
            saved["deleted"] += sum(1 for r in page if r.get("IsDeleted") is True)
            self.save(folder, "api", newest, page.response.content)
        return saved
