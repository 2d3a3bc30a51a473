"""GA4 export rows and Mixpanel export lines: what lands, what is quarantined and why."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import orjson
import polars as pl
import pytest

from inboxgraph.resources.sources import EventFolderSource
from inboxgraph.transforms import ga4_events, mixpanel_events
from inboxgraph.transforms.common import split_quarantine

RECEIVED = date(2026, 11, 20)
AT = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _lines(*records: dict | str) -> pl.DataFrame:
    raw = [r if isinstance(r, str) else orjson.dumps(r).decode() for r in records]
    return pl.DataFrame(
        {"_raw": raw, "_source_file": ["f.jsonl"] * len(raw), "_line": range(1, len(raw) + 1)},
        schema={"_raw": pl.String, "_source_file": pl.String, "_line": pl.Int64},
    )


def _ga4(**overrides: object) -> dict:
    return {
        "event_date": "20261120",
        "event_timestamp": str(int(AT.timestamp() * 1_000_000)),
        "event_name": "add_to_cart",
        "event_params": [
            {"key": "ga_session_id", "value": {"int_value": "1795170000"}},
            {"key": "page_location", "value": {"string_value": "https://shop.example.com/p/1"}},
            {"key": "value", "value": {"double_value": 25.0}},
        ],
        "user_id": None,
        "user_pseudo_id": "1234567.1795170000",
        "items": [{"item_id": "P1", "item_category": "Apparel", "price": 25.0, "quantity": 1}],
        "device": {"category": "mobile"},
        **overrides,
    }


def _prepared(module, *records: dict | str) -> pl.DataFrame:
    return module.prepare(_lines(*records), RECEIVED).collect()


def test_a_ga4_row_lands_with_its_parameters_flattened_and_its_moment_in_utc() -> None:
    row = _prepared(ga4_events, _ga4(event_timestamp=int(AT.timestamp() * 1_000_000))).row(
        0, named=True
    )
    assert row["reason"] is None
    assert row["occurred_at"] == AT
    assert orjson.loads(row["params"]) == {
        "ga_session_id": "1795170000",
        "page_location": "https://shop.example.com/p/1",
        "value": "25.0",
    }
    assert orjson.loads(row["items"])[0]["item_id"] == "P1"


def test_ga4_identity_values_ga4_never_received_are_no_identifiers() -> None:
    prepared = _prepared(
        ga4_events,
        _ga4(user_pseudo_id="(not set)", user_id="u-1"),
        _ga4(user_pseudo_id="  ", user_id="(not set)"),
    )
    assert prepared["user_pseudo_id"].to_list() == [None, None]
    assert prepared["reason"].to_list() == [None, "missing_identity"]


def test_the_same_ga4_row_exported_twice_lands_once_and_two_events_both_land() -> None:
    first = _ga4()
    later = _ga4(event_timestamp=str(int(AT.timestamp() * 1_000_000) + 1))
    prepared = _prepared(ga4_events, first, first, later)
    assert prepared["reason"].to_list() == [None, "duplicate_event", None]
    assert prepared["event_id"][0] == prepared["event_id"][1] != prepared["event_id"][2]


def test_a_ga4_export_in_parquet_lands_like_its_json_export(tmp_path: Path) -> None:
    rows = [_ga4(), _ga4(event_name="purchase", ecommerce={"transaction_id": "T-1"})]
    for row in rows:
        row["event_timestamp"] = int(row["event_timestamp"])  # INT64 in Parquet
    day = tmp_path / "ga4" / RECEIVED.isoformat()
    day.mkdir(parents=True)
    (day / "events_0.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in rows))
    source = EventFolderSource(folder="ga4", source="ga4_events", landing_url=str(tmp_path))
    from_json = ga4_events.prepare(source.read_lines(RECEIVED.isoformat()), RECEIVED).collect()
    (day / "events_0.jsonl").unlink()
    pl.DataFrame(rows).write_parquet(day / "events_0.parquet")
    lines = source.read_lines(RECEIVED.isoformat())
    assert lines["_source_file"].str.ends_with("events_0.parquet").all()
    from_parquet = ga4_events.prepare(lines, RECEIVED).collect()
    columns = ["reason", "event_name", "occurred_at", "user_pseudo_id", "params"]
    assert from_parquet.select(columns).equals(from_json.select(columns))
    landed, _ = split_quarantine(from_parquet.lazy(), list(ga4_events.LANDED_COLUMNS))
    assert orjson.loads(landed["ecommerce"][1])["transaction_id"] == "T-1"


def _mixpanel(**properties: object) -> dict:
    return {
        "event": "Add To Cart",
        "properties": {
            "time": int(AT.timestamp()),
            "distinct_id": "$device:d-1",
            "$device_id": "d-1",
            "$insert_id": "ins-1",
            "$current_url": "https://shop.example.com/p/1",
            "product_id": "P1",
            **properties,
        },
    }


def test_a_mixpanel_line_lands_with_its_ids_and_email_normalized() -> None:
    row = _prepared(
        mixpanel_events, _mixpanel(**{"$user_id": "u-1", "$email": " A.B@Example.COM "})
    ).row(0, named=True)
    assert row["reason"] is None
    assert (row["device_id"], row["user_id"], row["email"]) == ("d-1", "u-1", "a.b@example.com")
    assert row["occurred_at"] == AT
    assert orjson.loads(row["properties"])["product_id"] == "P1"


def test_a_mixpanel_distinct_id_alone_names_the_device() -> None:
    line = _mixpanel(**{"$insert_id": "ins-2"})
    del line["properties"]["$device_id"]
    assert _prepared(mixpanel_events, line)["device_id"].to_list() == ["d-1"]


def test_bad_mixpanel_lines_are_quarantined_with_their_reason() -> None:
    prepared = _prepared(
        mixpanel_events,
        _mixpanel(),
        _mixpanel(),
        _mixpanel(**{"$insert_id": "ins-3", "time": 1e30}),
        _mixpanel(**{"$insert_id": "ins-4", "time": [1]}),
        '{"event": "x", "properties": []}',
        '{"event": "x"',
    )
    assert prepared["reason"].to_list() == [
        None,
        "duplicate_insert_id",
        "impossible_timestamp",
        "wrong_type",
        "wrong_type",
        "invalid_json",
    ]


def test_a_damaged_parquet_export_fails_with_one_sentence_naming_it(tmp_path: Path) -> None:
    day = tmp_path / "ga4" / RECEIVED.isoformat()
    day.mkdir(parents=True)
    (day / "events_0.parquet").write_bytes(b"PAR1 this is not parquet")
    source = EventFolderSource(folder="ga4", source="ga4_events", landing_url=str(tmp_path))
    with pytest.raises(dg.Failure, match="events_0.parquet is not a readable Parquet file"):
        source.read_lines(RECEIVED.isoformat())
