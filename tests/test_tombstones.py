"""Tombstones keep an erased person out of every landing, parsed or not."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl

from inboxgraph.privacy import Person, add_tombstones, drop_tombstoned, read_tombstones
from inboxgraph.resources.lake import LakeResource
from inboxgraph.transforms import esp_events, mixpanel_events

RECEIVED = date(2026, 11, 20)


def _lines(*raw: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_raw": list(raw),
            "_source_file": ["f.jsonl"] * len(raw),
            "_line": range(1, len(raw) + 1),
        },
        schema={"_raw": pl.String, "_source_file": pl.String, "_line": pl.Int64},
    )


def _erased(tmp_path: Path, kind: str, value: str) -> pl.DataFrame:
    lake = LakeResource(url=str(tmp_path / "lake"))
    person = Person()
    person.add(kind, value)
    add_tombstones(lake, person, datetime(2026, 11, 21))
    return read_tombstones(lake)


def test_an_erased_address_is_dropped_from_good_and_unparseable_records(tmp_path: Path) -> None:
    tombstones = _erased(tmp_path, "email", "gone@example.com")
    good = '{"email": "Gone@Example.com", "timestamp": 1795170000, "event": "open"}'
    truncated = '{"email":"GONE@example.com","timestamp":1795170000,"event":"proc'
    other = '{"email":"kept@example.com","timestamp":1795170000,"event":"proc'
    prepared = esp_events.prepare(_lines(good, truncated, other), RECEIVED).collect()
    kept, removed = drop_tombstoned(prepared, "esp_events", tombstones)
    assert removed == 2
    assert kept["_raw"].to_list() == [other]


def test_an_erased_device_is_dropped_from_a_broken_mixpanel_line(tmp_path: Path) -> None:
    tombstones = _erased(tmp_path, "anonymous_id", "dev-gone-1")
    line = '{"event":"x","properties":{"time":1795170000,"$device_id":"dev-gone-1","$insert_id":"i'
    kept, removed = drop_tombstoned(
        mixpanel_events.prepare(_lines(line), RECEIVED).collect(),
        "mixpanel_events",
        tombstones,
    )
    assert (removed, kept.height) == (1, 0)
