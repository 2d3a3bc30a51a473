"""The incremental event models (the web parse, ESP staging) read only their window of the lake,
the received dates Dagster names (macro received_dates), and still let the first received copy
win."""

from __future__ import annotations

import json

import duckdb

from inboxgraph.resources.lake import LakeResource
from inboxgraph.settings import Paths
from inboxgraph.stream import ensure_stream_table
from tests.assets.lake_helpers import materialize_events
from tests.warehouse.scenario import query, run_dbt, write_lines

PARSED = "intermediate.int_web__events_parsed"
STAGED_ESP = "staging.stg_esp__events"


def _land(paths: Paths, day: str, file: str, *messages: tuple[str, str]) -> None:
    records = [
        {
            "type": "track",
            "messageId": message_id,
            "anonymousId": "anon-1",
            "event": event,
            "timestamp": f"{day}T10:00:00.000Z",
        }
        for message_id, event in messages
    ]
    write_lines(paths, "web_events", day, file, records)


def _rows(paths: Paths, table: str, kind: str) -> list[tuple]:
    """(event id, ``kind``, received date) of every row of ``table``, by event id."""
    return query(
        paths,
        f"select event_id, {kind}, cast(received_date as varchar) from {table} order by 1",
    )


def _dbt_run(paths: Paths, *args: str) -> None:
    run_dbt(paths, "run", "--select", "+int_web__events_parsed", *args)


def _parsed(paths: Paths) -> list[tuple]:
    return _rows(paths, PARSED, "event_name")


def test_incremental_parse_equals_a_full_refresh(platform_home: Paths) -> None:
    paths = platform_home
    ensure_stream_table(LakeResource(url=paths.lake_url))
    _land(paths, "2026-11-01", "a.jsonl", ("m-1", "Day One"), ("dup-a", "first copy"))
    _land(paths, "2026-11-02", "a.jsonl", ("m-02", "Ordinary"))
    _land(paths, "2026-11-03", "a.jsonl", ("m-03", "Ordinary"), ("dup-b", "later copy"))
    _land(paths, "2026-11-04", "a.jsonl", ("m-04", "Ordinary"))
    _land(paths, "2026-11-05", "a.jsonl", ("m-05", "Ordinary"))
    materialize_events(paths)
    _dbt_run(paths)
    assert len(_parsed(paths)) == 7

    # The next run's window names a new day, which resends dup-a (first parsed from 11-01,
    # outside the window), and 11-02, landed again with an earlier copy of dup-b (parsed from
    # 11-03, outside the window too). 11-07 has landed as well, but the run does not name it.
    _land(paths, "2026-11-06", "a.jsonl", ("m-06", "Ordinary"), ("dup-a", "resent copy"))
    _land(paths, "2026-11-02", "b.jsonl", ("m-02b", "Late line"), ("dup-b", "earlier copy"))
    _land(paths, "2026-11-07", "a.jsonl", ("m-07", "Not yet named"))
    materialize_events(paths)
    _dbt_run(paths, "--vars", json.dumps({"web_received_dates": ["2026-11-02", "2026-11-06"]}))
    incremental = _parsed(paths)

    by_id = {event_id: (event, day) for event_id, event, day in incremental}
    assert "m-07" not in by_id, "a day outside the window is not read"
    assert len(by_id) == len(incremental) == 9
    assert by_id["dup-a"] == ("first copy", "2026-11-01"), "the first received copy wins"
    assert by_id["dup-b"] == ("earlier copy", "2026-11-02"), "an earlier day landed again wins"
    assert by_id["m-06"] == ("Ordinary", "2026-11-06")
    assert by_id["m-02b"] == ("Late line", "2026-11-02")

    # The next run names 11-07; a run that names no window (dbt by hand) reads every day.
    _dbt_run(paths, "--vars", json.dumps({"web_received_dates": ["2026-11-07"]}))
    incremental = _parsed(paths)
    assert len(incremental) == 10
    _dbt_run(paths)
    assert _parsed(paths) == incremental
    _dbt_run(paths, "--full-refresh")
    assert _parsed(paths) == incremental


PROFILE_EVENTS = "intermediate.int_web__profile_events"


def _profile_events(paths: Paths) -> list[tuple]:
    return _rows(paths, PROFILE_EVENTS, "event_name")


def test_profile_events_follow_the_parse_incrementally(platform_home: Paths) -> None:
    paths = platform_home
    ensure_stream_table(LakeResource(url=paths.lake_url))
    _land(paths, "2026-11-01", "a.jsonl", ("m-1", "Product Added"), ("m-2", "Product Viewed"))
    _land(paths, "2026-11-03", "a.jsonl", ("m-3", "Order Completed"), ("dup", "Product Added"))
    materialize_events(paths)
    run_dbt(paths, "run", "--select", "+int_web__profile_events")
    assert _profile_events(paths) == [
        ("dup", "Product Added", "2026-11-03"),
        ("m-1", "Product Added", "2026-11-01"),
        ("m-3", "Order Completed", "2026-11-03"),
    ]

    # A new day is parsed in a run that does not build the profile events; then 11-02 lands
    # with an earlier copy of `dup` that is no longer a cart add (the first received copy wins).
    _land(paths, "2026-11-04", "a.jsonl", ("m-4", "Order Completed"), ("m-5", "Checkout"))
    materialize_events(paths)
    window = json.dumps({"web_received_dates": ["2026-11-04"]})
    run_dbt(paths, "run", "--select", "int_web__events_parsed", "--vars", window)
    _land(paths, "2026-11-02", "b.jsonl", ("dup", "Product Viewed"))
    materialize_events(paths)
    run_dbt(
        paths,
        "run",
        "--select",
        "int_web__events_parsed",
        "int_web__profile_events",
        "--vars",
        json.dumps({"web_received_dates": ["2026-11-02"]}),
    )
    incremental = _profile_events(paths)
    assert incremental == [
        ("m-1", "Product Added", "2026-11-01"),
        ("m-3", "Order Completed", "2026-11-03"),
        ("m-4", "Order Completed", "2026-11-04"),
    ]
    assert _rows(paths, PARSED, "event_name")[0] == ("dup", "Product Viewed", "2026-11-02")

    run_dbt(paths, "run", "--select", "int_web__profile_events", "--full-refresh")
    assert _profile_events(paths) == incremental


def _land_esp(paths: Paths, day: str, file: str, *events: tuple[str, str]) -> None:
    records = [
        {
            "email": "reader@example.com",
            "timestamp": 1_793_000_000,
            "event": event,
            "sg_event_id": event_id,
            "sg_message_id": "msg-1",
        }
        for event_id, event in events
    ]
    write_lines(paths, "esp_events", day, file, records)


def _staged_esp(paths: Paths) -> list[tuple]:
    return _rows(paths, STAGED_ESP, "event_type")


def test_incremental_esp_staging_equals_a_full_refresh(platform_home: Paths) -> None:
    paths = platform_home
    ensure_stream_table(LakeResource(url=paths.lake_url))
    _land(paths, "2026-11-01", "a.jsonl", ("m-1", "Web"))  # the parse needs a web table
    _land_esp(paths, "2026-11-01", "a.jsonl", ("e-1", "processed"), ("dup-a", "delivered"))
    _land_esp(paths, "2026-11-02", "a.jsonl", ("e-02", "processed"))
    _land_esp(paths, "2026-11-03", "a.jsonl", ("e-03", "processed"), ("dup-b", "open"))
    _land_esp(paths, "2026-11-04", "a.jsonl", ("e-04", "processed"))
    _land_esp(paths, "2026-11-05", "a.jsonl", ("e-05", "processed"))
    materialize_events(paths)
    run_dbt(paths, "run", "--select", "stg_esp__events")
    assert len(_staged_esp(paths)) == 7

    # As for the parse: the window names a new day, on which dup-a is resent, and 11-02,
    # landed again with an earlier copy of dup-b.
    _land_esp(paths, "2026-11-06", "a.jsonl", ("e-06", "processed"), ("dup-a", "click"))
    _land_esp(paths, "2026-11-02", "b.jsonl", ("e-02b", "bounce"), ("dup-b", "click"))
    materialize_events(paths)
    # Dagster names the dates as a dbt var.
    run_dbt(
        paths,
        "run",
        "--select",
        "stg_esp__events",
        "--vars",
        json.dumps({"esp_received_dates": ["2026-11-02", "2026-11-06"]}),
    )
    incremental = _staged_esp(paths)

    by_id = {event_id: (event, day) for event_id, event, day in incremental}
    assert len(by_id) == len(incremental) == 9
    assert by_id["dup-a"] == ("delivered", "2026-11-01"), "the first received copy wins"
    assert by_id["dup-b"] == ("click", "2026-11-02"), "an earlier day landed again wins"
    assert by_id["e-06"] == ("processed", "2026-11-06")
    assert by_id["e-02b"] == ("bounce", "2026-11-02")

    run_dbt(paths, "run", "--select", "stg_esp__events", "--full-refresh")
    assert _staged_esp(paths) == incremental


WATERMARKS = "dbt_meta.test_watermarks"


def _parse_tests(paths: Paths, succeeds: bool = True) -> str:
    return run_dbt(paths, "test", "--select", "int_web__events_parsed", succeeds=succeeds)


def test_incremental_tests_read_the_rows_not_yet_tested_until_they_pass(
    platform_home: Paths,
) -> None:
    paths = platform_home
    ensure_stream_table(LakeResource(url=paths.lake_url))
    _land(paths, "2026-11-01", "a.jsonl", ("m-1", "Day One"))
    _land(paths, "2026-11-02", "a.jsonl", ("m-2", "Day Two"))
    materialize_events(paths)
    run_dbt(paths, "build", "--select", "+int_web__events_parsed")
    # The parse's four tests passed over every row and recorded it.
    watermarks = dict(query(paths, f"select test_id, passed_through from {WATERMARKS}"))
    parse_tests = {t for t in watermarks if "int_web__events_parsed" in t}
    assert len(parse_tests) == 4
    built = query(paths, f"select distinct built_at from {PARSED}")
    assert built == [(watermarks[next(iter(parse_tests))],)]

    def insert(event_id: str, built_at: str) -> None:
        with duckdb.connect(paths.warehouse) as con:
            con.execute(
                f"insert into {PARSED} by name select * replace "
                f"('{event_id}' as event_id, null as occurred_at, {built_at} as built_at) "
                f"from {PARSED} where event_id = 'm-1'"
            )

    # A row older than the watermark has been tested: the tests do not read it again.
    insert("m-old", "timestamp '2000-01-01'")
    _parse_tests(paths)
    # Rows written after it are read, and fail until they are fixed: the watermark stays. (A run
    # that writes a key deletes the key's held rows first, so a duplicate is within one run's.)
    insert("m-dup", "now()::timestamp")
    insert("m-dup", "now()::timestamp")
    failing = sorted(
        t
        for t in parse_tests
        if "unique_" in t or "not_null_in_new_rows_int_web__events_parsed_occ" in t
    )
    assert len(failing) == 2

    def marks() -> dict:
        return dict(query(paths, f"select test_id, passed_through from {WATERMARKS}"))

    before = marks()
    for _ in range(2):
        output = _parse_tests(paths, succeeds=False)
        assert "FAIL 1 unique_in_new_rows_int_web__events_parsed_event_id" in output
        assert "FAIL 2 not_null_in_new_rows_int_web__events_parsed_occurred_at" in output
    # Each test keeps its own watermark: the two that fail stay where they were.
    assert {t: marks()[t] for t in failing} == {t: before[t] for t in failing}
    with duckdb.connect(paths.warehouse) as con:
        con.execute(
            f"delete from {PARSED} where built_at > timestamp '2000-01-02' and occurred_at is null"
        )
    _parse_tests(paths)
    assert all(marks()[t] > watermarks[t] for t in parse_tests)
