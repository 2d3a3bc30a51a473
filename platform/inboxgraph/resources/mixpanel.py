"""Mixpanel's Raw Event Export API as a live source: each day's events saved into the landing
zone in the export's own format, where the files mode lands them.

``GET {api_url}/api/2.0/export?from_date=D&to_date=D&project_id=P`` with a service account
(HTTP Basic, ``username:secret``; a legacy project secret is the username with no password)
returns the day's events as JSON lines. One request per day (the API's rate limit is 60
queries an hour and 3 a second): the day's response streams to
``landing/mixpanel/<D>/mixpanel-api.jsonl.gz`` and is committed by a rename only once complete,
so a pull killed midway leaves every finished day and no partial one, and the next pull
resumes at the first day it has not saved (re-reading the last ``lookback_days``, where late
events still arrive; a day saved again replaces its file, and the lake deduplicates by
``$insert_id``). HTTP goes through dlt's requests client: 429 and 5xx are retried with
exponential backoff, honouring ``Retry-After``; a response cut off mid-body is read again.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import requests
import tenacity

from inboxgraph.resources.http import retrying_session
from inboxgraph.resources.sources import LandingResource
from inboxgraph.storage import write_atomic

DEFAULT_API_URL = "https://data.mixpanel.com"
FILE_NAME = "mixpanel-api.jsonl.gz"
SECRET_VARIABLE = "INBOXGRAPH_MIXPANEL_SECRET"


def first_day(start_date: str, today: date) -> str:
    """The first day a pull saves: INBOXGRAPH_MIXPANEL_START_DATE, else 30 days before today."""
    if not start_date.strip():
        return (today - timedelta(days=30)).isoformat()
    try:
        return date.fromisoformat(start_date.strip()).isoformat()
    except ValueError:
        raise ValueError(
            f"INBOXGRAPH_MIXPANEL_START_DATE={start_date!r} is not a date; use YYYY-MM-DD"
        ) from None


class MixpanelExport(LandingResource):
    """Pulls Mixpanel's Raw Event Export into ``<landing>/mixpanel/`` (live mode: on when a
    secret is set)."""

    api_url: str = ""
    project_id: str = ""
    username: str = ""
    secret: str = ""
    start_date: str = ""
    lookback_days: int = 2
    max_attempts: int = 6
    backoff_seconds: float = 1.0
    timeout_seconds: float = 300.0

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    @property
    def folder(self) -> Path:
        return self.local_landing("the Mixpanel pull saves") / "mixpanel"

    def pulled_days(self) -> list[str]:
        """Days whose export this pull saved completely, oldest first."""
        if not self.folder.is_dir():
            return []
        return sorted(p.parent.name for p in self.folder.glob(f"*/{FILE_NAME}"))

    def days_to_pull(self, today: date | None = None) -> list[str]:
        """From the day after the newest one saved, less the lookback (or from the start
        date), through today (UTC)."""
        today = today or datetime.now(UTC).date()
        try:
            first = date.fromisoformat(first_day(self.start_date, today))
        except ValueError as error:
            raise dg.Failure(str(error), allow_retries=False) from None
        pulled = self.pulled_days()
        if pulled:
            resume = date.fromisoformat(pulled[-1]) + timedelta(days=1 - self.lookback_days)
            first = max(first, resume)
        return [(first + timedelta(days=n)).isoformat() for n in range((today - first).days + 1)]

    def _auth(self) -> tuple[str, str]:
        return (self.username, self.secret) if self.username else (self.secret, "")

    def pull(self, days: list[str], log: Callable[[str], None] = print) -> dict[str, int]:
        """Save each day's export; returns the events saved per day."""
        base = (self.api_url or DEFAULT_API_URL).rstrip("/")
        session = retrying_session(self.max_attempts, self.backoff_seconds, self.timeout_seconds)
        saved: dict[str, int] = {}
        for day in days:
            params = {"from_date": day, "to_date": day}
            if self.project_id:
                params["project_id"] = self.project_id
            # A body cut off mid-stream is read again from the start (the file is not yet
            # committed); the request itself is retried by dlt's client.
            read_day = tenacity.Retrying(
                stop=tenacity.stop_after_attempt(self.max_attempts),
                wait=tenacity.wait_exponential(multiplier=self.backoff_seconds, max=60),
                retry=tenacity.retry_if_exception_type(
                    (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)
                ),
                reraise=True,
            )
            saved[day] = read_day(self._save_day, session, f"{base}/api/2.0/export", params, day)
            log(f"mixpanel export {day}: {saved[day]} events")
        return saved

    def _save_day(
        self, session: requests.Session, url: str, params: dict[str, str], day: str
    ) -> int:
        with session.get(
            url,
            params=params,
            auth=self._auth(),
            headers={"Accept-Encoding": "gzip", "Accept": "text/plain"},
            stream=True,
        ) as response:
            if response.status_code in (401, 403):
                raise dg.Failure(
                    f"Mixpanel refused the service account ({response.status_code}): check "
                    f"{SECRET_VARIABLE} (and INBOXGRAPH_MIXPANEL_USERNAME, "
                    "INBOXGRAPH_MIXPANEL_PROJECT_ID)",
                    allow_retries=False,
                )
            if response.status_code != 200:
                raise dg.Failure(
                    f"Mixpanel's export of {day} failed with {response.status_code}: "
                    f"{response.text[:300]}"
                )
            events = 0

            def write(temporary: Path) -> None:
                nonlocal events
                with gzip.GzipFile(temporary, mode="wb", compresslevel=1, mtime=0) as out:
                    for line in response.iter_lines():
                        if line.strip():
                            out.write(line + b"\n")
                            events += 1

            write_atomic(self.folder / day / FILE_NAME, write)
            return events
