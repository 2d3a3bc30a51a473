"""The ESPs' APIs as sync destinations (inboxgraph.destinations): Mailchimp and Braze on dlt's
retrying HTTP session, Klaviyo through its maintained SDK (``klaviyo-api``).

Every request is retried the vendor's way where that is safe: 429 after ``Retry-After``, 5xx
and dropped connections with exponential backoff. The writes are upserts (a Mailchimp member by
address, a Klaviyo profile by email, a Braze user by external id, a tag or segment set to a
state), so a batch sent again after an answer that never arrived changes nothing. 401/403 fail
the sync at once with one sentence naming the variable that holds the key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, ClassVar

import dagster as dg
import requests
import tenacity

from inboxgraph.destinations import Change, Outcome
from inboxgraph.resources.http import retrying_session

MAILCHIMP_BATCH = 500  # POST /lists/{list_id}: at most 500 members a call
BRAZE_BATCH = 75  # /users/track: at most 75 attribute objects a request
BRAZE_DELETE_BATCH = 50  # /users/delete: at most 50 identifiers a request
KLAVIYO_BATCH = 1000  # list relationships: at most 1,000 profiles a call (imports take 10,000)


def subscriber_hash(email: str) -> str:
    """Mailchimp's id of a member: the MD5 of the lower-cased address."""
    return hashlib.md5(email.lower().encode()).hexdigest()  # noqa: S324 (the vendor's id)


class _EspApi(dg.ConfigurableResource):
    """What the ESP destinations share: the key (syncing is on when it is set), the endpoint
    and the retries."""

    api_key: str = ""
    api_url: str = ""
    max_attempts: int = 5
    backoff_seconds: float = 1.0

    vendor: ClassVar[str]
    key_variable: ClassVar[str]

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    def _post(
        self, session: requests.Session, url: str, missing_ok: bool = False, **kwargs: Any
    ) -> requests.Response:
        """A POST through the retrying session. An unreachable server, a refused key (naming
        its variable) and any other error answer fail the sync in one sentence; a 404 passes
        when ``missing_ok``."""
        try:
            response = session.post(url, **kwargs)
        except requests.exceptions.RequestException as error:
            raise dg.Failure(f"{self.vendor} could not be reached: {error}") from None
        if response.status_code in (401, 403):
            raise dg.Failure(
                f"{self.vendor} refused the API key ({response.status_code}: "
                f"{response.text[:200]}); check {self.key_variable}",
                allow_retries=False,
            )
        if response.status_code >= 400 and not (missing_ok and response.status_code == 404):
            raise dg.Failure(
                f"{self.vendor} answered {response.status_code} to {response.request.method} "
                f"{response.request.path_url.split('?')[0]}: {response.text[:300]}"
            )
        return response


def _merge_fields(change: Change) -> dict[str, str]:
    fields = change.fields
    products = fields.get("featured_products") or []
    values = {
        "FNAME": fields.get("first_name"),
        "LNAME": fields.get("last_name"),
        "TOPCAT": fields.get("top_category"),
        "PRODUCTS": "|".join(products),
        "LTVTIER": fields.get("lifetime_value_tier"),
    }
    return {k: "" if v is None else str(v) for k, v in values.items()}


class MailchimpApi(_EspApi):
    """Mailchimp Marketing API v3: members upserted in batches of 500 (``POST
    /lists/{list_id}``, status subscribed, merge fields, the segments as tags), removed
    segments untagged (``POST /lists/{list_id}/members/{subscriber_hash}/tags``, inactive)."""

    list_id: str = ""

    name: str = "mailchimp"
    batch_size: int = MAILCHIMP_BATCH
    vendor: ClassVar[str] = "Mailchimp"
    key_variable: ClassVar[str] = "INBOXGRAPH_MAILCHIMP_API_KEY"

    @property
    def base_url(self) -> str:
        """INBOXGRAPH_MAILCHIMP_API_URL, else the data center the key names (``...-us21``)."""
        if self.api_url:
            return self.api_url.rstrip("/")
        center = self.api_key.rsplit("-", 1)[-1] if "-" in self.api_key else "us1"
        return f"https://{center}.api.mailchimp.com"

    def _session(self) -> requests.Session:
        if not self.list_id:
            raise dg.Failure("INBOXGRAPH_MAILCHIMP_LIST_ID is not set: name the audience to sync")
        session = retrying_session(self.max_attempts, self.backoff_seconds)
        session.auth = ("inboxgraph", self.api_key)
        return session

    def _batch(self, session: requests.Session, members: list[dict]) -> dict[str, str]:
        """One batch subscribe or update call; returns the refused addresses (lower-cased)
        with Mailchimp's reason."""
        url = f"{self.base_url}/3.0/lists/{self.list_id}"
        body = {"members": members, "update_existing": True}
        answer = self._post(session, url, json=body).json()
        return {e["email_address"].lower(): e["error"] for e in answer.get("errors", [])}

    def send(self, batch: list[Change]) -> Outcome:
        session = self._session()
        outcome = Outcome()
        staying = [c for c in batch if not c.leaving]
        if staying:
            members = [
                {
                    "email_address": c.email,
                    "status": "subscribed",
                    "merge_fields": _merge_fields(c),
                    "tags": c.add,
                }
                for c in staying
            ]
            refused = self._batch(session, members)
            for change in staying:
                reason = refused.get(change.email.lower())
                if reason:
                    outcome.refused[change.person_id] = reason
                else:
                    outcome.acknowledged[change.person_id] = subscriber_hash(change.email)
        for change in batch:
            if not change.remove or change.person_id in outcome.refused:
                continue
            member = change.esp_ref or subscriber_hash(change.email)
            url = f"{self.base_url}/3.0/lists/{self.list_id}/members/{member}/tags"
            tags = {"tags": [{"name": s, "status": "inactive"} for s in change.remove]}
            # A member Mailchimp no longer has (404) keeps no tag.
            self._post(session, url, missing_ok=True, json=tags)
            outcome.acknowledged.setdefault(change.person_id, member)
        return outcome

    def suppress(self, emails: list[str]) -> set[str]:
        """Mailchimp's own suppression: the members set to unsubscribed (Mailchimp then never
        mails them until they opt in again themselves)."""
        members = [{"email_address": e, "status": "unsubscribed"} for e in emails]
        refused = self._batch(self._session(), members)
        return {e for e in emails if e.lower() not in refused}

    def forget(self, emails: list[str], person_ids: list[str]) -> int:
        """GDPR erasure: each address's member deleted permanently (``POST
        /lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent``; Mailchimp then
        refuses to import the address again). Returns the members deleted (404: none held)."""
        session = self._session()
        members = f"{self.base_url}/3.0/lists/{self.list_id}/members"
        deleted = 0
        for email in emails:
            url = f"{members}/{subscriber_hash(email)}/actions/delete-permanent"
            deleted += self._post(session, url, missing_ok=True).status_code != 404
        return deleted


class BrazeApi(_EspApi):
    """Braze ``/users/track``: one attribute object per person (external id: the person id),
    at most 75 a request, the segments in the custom array ``inboxgraph_segments``."""

    name: str = "braze"
    batch_size: int = BRAZE_BATCH
    vendor: ClassVar[str] = "Braze"
    key_variable: ClassVar[str] = "INBOXGRAPH_BRAZE_API_KEY"

    def _endpoint(self, path: str) -> str:
        if not self.api_url:
            raise dg.Failure(
                "INBOXGRAPH_BRAZE_API_URL is not set: give your Braze REST endpoint "
                "(https://rest.<instance>.braze.com)"
            )
        return f"{self.api_url.rstrip('/')}{path}"

    def send(self, batch: list[Change]) -> Outcome:
        url = self._endpoint("/users/track")
        session = retrying_session(self.max_attempts, self.backoff_seconds)
        objects: list[dict[str, Any]] = []
        for change in batch:
            segments: dict[str, list[str]] = {}
            if change.add:
                segments["add"] = change.add
            if change.remove:
                segments["remove"] = change.remove
            item: dict[str, Any] = {"external_id": change.person_id}
            if not change.leaving:
                products = change.fields.get("featured_products") or []
                item.update(
                    email=change.email,
                    first_name=change.fields.get("first_name"),
                    top_category=change.fields.get("top_category"),
                    featured_products=list(products),
                    lifetime_value_tier=change.fields.get("lifetime_value_tier"),
                    email_subscribe="subscribed",
                )
            if segments:
                item["inboxgraph_segments"] = segments
            objects.append(item)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        answer = self._post(session, url, json={"attributes": objects}, headers=headers).json()
        refused = {e.get("index"): e.get("type", "refused") for e in answer.get("errors", [])}
        outcome = Outcome()
        for index, change in enumerate(batch):
            if index in refused:
                outcome.refused[change.person_id] = str(refused[index])
            else:
                outcome.acknowledged[change.person_id] = change.person_id
        return outcome

    suppress_batch_size: int = 50  # /email/status: at most 50 addresses a request

    def suppress(self, emails: list[str]) -> set[str]:
        """Braze's own subscription state: ``POST /email/status`` unsubscribed."""
        session = retrying_session(self.max_attempts, self.backoff_seconds)
        body = {"email": emails, "subscription_state": "unsubscribed"}
        headers = {"Authorization": f"Bearer {self.api_key}"}
        self._post(session, self._endpoint("/email/status"), json=body, headers=headers)
        return set(emails)

    def forget(self, emails: list[str], person_ids: list[str]) -> int:
        """GDPR erasure: ``POST /users/delete`` for the users whose external id is one of the
        person's ids, then for those with one of the addresses (at most 50 identifiers of one
        kind a request). Returns the users Braze queued for deletion."""
        session = retrying_session(self.max_attempts, self.backoff_seconds)
        url = self._endpoint("/users/delete")
        headers = {"Authorization": f"Bearer {self.api_key}"}
        deleted = 0
        for kind, values in (("external_ids", person_ids), ("email_addresses", emails)):
            for start in range(0, len(values), BRAZE_DELETE_BATCH):
                body = {kind: values[start : start + BRAZE_DELETE_BATCH]}
                answer = self._post(session, url, json=body, headers=headers).json()
                deleted += int(answer.get("deleted") or 0)
        return deleted


class KlaviyoApi(_EspApi):
    """Klaviyo through ``klaviyo-api``: profiles through a bulk import job (waited for, its
    import errors read), then list membership through the list's relationships endpoints
    (added for people in any segment, removed for people in none). The segments are the
    profile property ``inboxgraph_segments``."""

    list_id: str = ""
    job_wait_seconds: float = 600.0

    name: str = "klaviyo"
    batch_size: int = KLAVIYO_BATCH
    vendor: ClassVar[str] = "Klaviyo"
    key_variable: ClassVar[str] = "INBOXGRAPH_KLAVIYO_API_KEY"

    def _client(self) -> Any:
        from klaviyo_api import KlaviyoAPI
        from openapi_client.api_arg_options import USE_DICTIONARY_FOR_RESPONSE_DATA

        return KlaviyoAPI(
            self.api_key,
            max_delay=60,
            max_retries=self.max_attempts,
            test_host=self.api_url.rstrip("/"),
            options={USE_DICTIONARY_FOR_RESPONSE_DATA: True},
        )

    def _call(self, call: Callable[[], Any]) -> Any:
        """The SDK retries 429 and 503/504 itself; 500s and dropped connections too here."""
        from openapi_client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as ConnectionTrouble

        def retryable(error: BaseException) -> bool:
            if isinstance(error, ApiException):
                return error.status is not None and error.status >= 500
            return isinstance(error, ConnectionTrouble | ConnectionError)

        try:
            return tenacity.Retrying(
                stop=tenacity.stop_after_attempt(self.max_attempts),
                wait=tenacity.wait_exponential(multiplier=self.backoff_seconds, max=60),
                retry=tenacity.retry_if_exception(retryable),
                reraise=True,
            )(call)
        except ApiException as error:
            if error.status in (401, 403):
                raise dg.Failure(
                    f"{self.vendor} refused the API key ({error.status}: "
                    f"{str(error.body)[:200]}); check {self.key_variable}",
                    allow_retries=False,
                ) from None
            raise dg.Failure(
                f"{self.vendor} answered {error.status}: {str(error.body)[:300]}"
            ) from None
        except (ConnectionTrouble, ConnectionError) as error:
            raise dg.Failure(f"{self.vendor} could not be reached: {error}") from None

    def send(self, batch: list[Change]) -> Outcome:
        if not self.list_id:
            raise dg.Failure("INBOXGRAPH_KLAVIYO_LIST_ID is not set: name the list to sync")
        klaviyo = self._client()
        outcome = Outcome()
        staying = [c for c in batch if not c.leaving]
        if staying:
            ids = self._import(klaviyo, staying, outcome)
            joining = [ids[c.person_id] for c in staying if c.person_id in ids]
            for start in range(0, len(joining), KLAVIYO_BATCH):
                chunk = [
                    {"type": "profile", "id": i} for i in joining[start : start + KLAVIYO_BATCH]
                ]
                self._call(
                    lambda chunk=chunk: klaviyo.Lists.add_profiles_to_list(
                        self.list_id, {"data": chunk}
                    )
                )
        leaving = [c for c in batch if c.leaving]
        known = [c for c in leaving if c.esp_ref]
        if known:
            data = [{"type": "profile", "id": c.esp_ref} for c in known]
            self._call(
                lambda: klaviyo.Lists.remove_profiles_from_list(self.list_id, {"data": data})
            )
        for change in leaving:
            outcome.acknowledged[change.person_id] = change.esp_ref
        return outcome

    suppress_batch_size: int = 100  # a suppression job takes at most 100 profiles

    def suppress(self, emails: list[str]) -> set[str]:
        """Klaviyo's own suppression: a bulk suppression job (no email until they opt in)."""
        klaviyo = self._client()
        profiles = [{"type": "profile", "attributes": {"email": e}} for e in emails]
        job = {
            "data": {
                "type": "profile-suppression-bulk-create-job",
                "attributes": {"profiles": {"data": profiles}},
            }
        }
        self._call(lambda: klaviyo.Profiles.bulk_suppress_profiles(job))
        return set(emails)

    def forget(self, emails: list[str], person_ids: list[str]) -> int:
        """GDPR erasure: a data privacy deletion request per address
        (``request_profile_deletion``; Klaviyo deletes every profile with it, in the
        background). Returns the requests Klaviyo accepted."""
        klaviyo = self._client()
        for email in emails:
            profile = {"data": {"type": "profile", "attributes": {"email": email}}}
            attributes = {"profile": profile}
            job = {"data": {"type": "data-privacy-deletion-job", "attributes": attributes}}
            self._call(lambda job=job: klaviyo.Data_Privacy.request_profile_deletion(job))
        return len(emails)

    def _import(self, klaviyo: Any, staying: list[Change], outcome: Outcome) -> dict[str, str]:
        """One bulk import job for ``staying``; returns person id -> Klaviyo profile id for the
        profiles imported, and records the refused ones."""
        profiles = []
        for change in staying:
            products = change.fields.get("featured_products") or []
            properties = {
                "inboxgraph_segments": change.segments,
                "top_category": change.fields.get("top_category"),
                "featured_products": list(products),
                "lifetime_value_tier": change.fields.get("lifetime_value_tier"),
            }
            attributes = {
                "email": change.email,
                "first_name": change.fields.get("first_name"),
                "last_name": change.fields.get("last_name"),
                "properties": properties,
            }
            profiles.append({"type": "profile", "attributes": attributes})
        body = {
            "data": {
                "type": "profile-bulk-import-job",
                "attributes": {"profiles": {"data": profiles}},
            }
        }
        job = self._call(lambda: klaviyo.Profiles.bulk_import_profiles(body))["data"]
        job_id = job["id"]
        deadline = time.monotonic() + self.job_wait_seconds
        while job["attributes"]["status"] not in ("complete", "cancelled"):
            if time.monotonic() > deadline:
                raise dg.Failure(f"Klaviyo's import job {job['id']} did not finish in time")
            time.sleep(min(2.0, self.backoff_seconds))
            job = self._call(lambda: klaviyo.Profiles.get_bulk_import_profiles_job(job_id))["data"]
        errors = self._call(
            lambda: klaviyo.Profiles.get_errors_for_bulk_import_profiles_job(job_id)
        )["data"]
        by_email = {c.email.lower(): c for c in staying}
        for error in errors:
            email = str((error["attributes"].get("original_payload") or {}).get("email", ""))
            change = by_email.get(email.strip().lower())
            if change is not None:
                outcome.refused[change.person_id] = error["attributes"].get("detail") or "refused"
        imported = self._call(
            lambda: klaviyo.Profiles.get_profiles_for_bulk_import_profiles_job(
                job_id, page_size=100
            )
        )
        ids: dict[str, str] = {}
        while True:
            for profile in imported["data"]:
                change = by_email.get(str(profile["attributes"].get("email", "")).lower())
                if change is not None and change.person_id not in outcome.refused:
                    ids[change.person_id] = profile["id"]
                    outcome.acknowledged[change.person_id] = profile["id"]
            following = (imported.get("links") or {}).get("next")
            if not following:
                return ids
            imported = self._call(
                lambda following=following: (
                    klaviyo.Profiles.get_profiles_for_bulk_import_profiles_job(
                        job_id, page_cursor=following, page_size=100
                    )
                )
            )
