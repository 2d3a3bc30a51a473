from __future__ import annotations

from datetime import date

import orjson
import polars as pl
import pytest

from inboxgraph.transforms import web_events

RECEIVED = date(2026, 11, 20)


def _lines(*records: dict | str) -> pl.DataFrame:
    raw = [r if isinstance(r, str) else orjson.dumps(r).decode() for r in records]
    return pl.DataFrame(
        {"_raw": raw, "_source_file": ["f.jsonl"] * len(raw), "_line": range(1, len(raw) + 1)},
        schema={"_raw": pl.String, "_source_file": pl.String, "_line": pl.Int64},
    )


def _good(**overrides: object) -> dict:
    message = {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "m-1",
        "anonymousId": "a-1",
        "timestamp": "2026-11-20T10:00:00.000Z",
        "properties": {"product_id": "P1"},
        "context": {"ip": "203.0.113.1"},
    }
    message.update(overrides)
    return {k: v for k, v in message.items() if v is not None}


def _reasons(*records: dict | str) -> list[str | None]:
    return (
        web_events.prepare(_lines(*records), RECEIVED).collect().sort("_line")["reason"].to_list()
    )


def test_a_good_message_lands_with_typed_fields() -> None:
    good, _ = web_events.prepare(_lines(_good()), RECEIVED), None
    row = good.collect().row(0, named=True)
    assert row["reason"] is None
    assert row["message_id"] == "m-1"
    assert row["timestamp"].isoformat() == "2026-11-20T10:00:00+00:00"
    assert orjson.loads(row["properties"]) == {"product_id": "P1"}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ('{"type": "track", "messageId": "m-1", "anonym', "invalid_json"),
        ("[1, 2, 3]", "invalid_json"),
        (_good(messageId=None), "missing_message_id"),
        (_good(type="bogus"), "unknown_type"),
        (_good(anonymousId=None), "missing_identity"),
        (_good(anonymousId="  "), "missing_identity"),
        (_good(timestamp=1763632800), "wrong_type"),
        (_good(properties="product_id=P1"), "wrong_type"),
        (_good(timestamp="2026-02-30T10:00:00Z"), "impossible_timestamp"),
        (_good(timestamp="1970-01-01T00:00:00.000Z"), "impossible_timestamp"),
        (_good(timestamp="2099-01-01T00:00:00.000Z"), "impossible_timestamp"),
        (_good(type="identify", event=None, traits={"email": "bob@@example com"}), "invalid_email"),
        (_good(event=None), "missing_event_name"),
        (_good(type="alias", event=None, userId="u-1"), "missing_previous_id"),
    ],
)
def test_each_kind_of_bad_message_gets_its_own_reason(record: dict | str, reason: str) -> None:
    assert _reasons(record) == [reason]


def test_junk_anonymous_id_with_a_user_id_is_not_bad() -> None:
    assert _reasons(_good(anonymousId="null", userId="u-1")) == [None]


def test_a_late_event_is_good() -> None:
    assert _reasons(_good(timestamp="2026-11-15T08:00:00Z")) == [None]


def test_repeated_message_id_keeps_the_first_and_quarantines_the_rest() -> None:
    assert _reasons(_good(), _good(), _good(messageId="m-2")) == [
        None,
        "duplicate_message_id",
        None,
    ]


def test_an_identify_email_is_normalized() -> None:
    record = _good(
        type="identify", event=None, userId="u-1", traits={"email": "  Bob.Smith@Example.COM "}
    )
    row = web_events.prepare(_lines(record), RECEIVED).collect().row(0, named=True)
    assert (row["reason"], row["email"]) == (None, "bob.smith@example.com")
