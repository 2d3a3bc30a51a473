"""What a simulated person leaves behind (:class:`Footprint`), the odds of what happens to them,
and the identifiers every source's simulation derives from (seed, person) by one hash, without
state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

import orjson

# How often things happen; tuned so the funnels and data-quality problems look like a shop's.
P_ANONYMOUS_ONLY = 0.30
P_CRM_ONLY = 0.08
P_ESP_ONLY = 0.04
P_CRM_FOR_REGISTERED = 0.6
P_OPT_IN_AT_SIGNUP = 0.7
P_CRM_OPTOUT = 0.15
P_SHARED_DEVICE = 0.01
P_ALIAS = 0.05
P_JUNK_ANON = 0.004
P_LATE = 0.015
P_DUPLICATE = 0.005
P_BAD = 0.005
P_ADD_TO_CART = 0.35
P_CHECKOUT = 0.55
P_PURCHASE = 0.6

WEB_BAD_KINDS = (
    "invalid_json",
    "missing_message_id",
    "missing_identity",
    "wrong_type",
    "impossible_timestamp",
)
ESP_BAD_KINDS = ("invalid_json", "missing_event_id", "invalid_email", "wrong_type")


def hash_hex(*parts: object, size: int = 16) -> str:
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=size).hexdigest()


def as_uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


def anonymous_id(seed: int, person: int, device: int) -> str:
    return as_uuid(hash_hex(seed, person, "device", device))


def user_id(seed: int, person: int) -> str:
    return "usr_" + hash_hex(seed, person, "user", size=6)


def truncated(record: dict) -> str:
    """The first half of a record's JSON line: a file cut off mid-write, an invalid document."""
    text = orjson.dumps(record).decode()
    return text[: len(text) // 2]


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def sql_ts(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Footprint:
    """Everything one person leaves behind, ready to be written by the landing writers."""

    web: list[tuple[date, dict | str]] = field(default_factory=list)
    ga4: list[tuple[date, dict | str]] = field(default_factory=list)
    mixpanel: list[tuple[date, dict | str]] = field(default_factory=list)
    esp: list[tuple[date, dict | str]] = field(default_factory=list)
    contact: dict | None = None
    # (lake table, record) of each Salesforce Contact and Lead, as a SOQL query returns it
    salesforce: list[tuple[str, dict]] = field(default_factory=list)
    customer: tuple | None = None
    orders: list[tuple] = field(default_factory=list)
    order_items: list[tuple] = field(default_factory=list)
    enrichment: dict[str, dict] = field(default_factory=dict)
    bad: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)

    def count_bad(self, source: str, kind: str) -> None:
        per_source = self.bad.setdefault(source, {})
        per_source[kind] = per_source.get(kind, 0) + 1
