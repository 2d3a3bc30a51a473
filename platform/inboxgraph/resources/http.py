"""The one HTTP stack for the vendors' APIs: dlt's requests session, which retries 429 (after
``Retry-After``), 5xx, dropped connections and timeouts with exponential backoff."""

from __future__ import annotations

import requests
from dlt.sources.helpers.requests import Client


def retrying_session(attempts: int, backoff: float, timeout: float = 60) -> requests.Session:
    """A session whose every request is retried up to ``attempts`` times; it never raises for
    a status itself (the callers decide what a 4xx means)."""
    return Client(
        request_timeout=timeout,
        request_max_attempts=attempts,
        request_backoff_factor=backoff,
        request_max_retry_delay=120,
        raise_for_status=False,
    ).session
