"""The collector speaks Segment's HTTP Tracking API and stores only what is valid."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl
import pytest
import requests

from inboxgraph.collector import CollectorSettings, LandingSink, build_app
from inboxgraph.settings import Paths
from tests.assets.lake_helpers import materialize_events, read_table
from tests.stream.server import serve

KEY = "write-key-123"


class RecordingSink:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def write(self, messages: list[dict]) -> None:
        self.messages.extend(messages)


@pytest.fixture
def collector() -> Iterator[tuple[str, RecordingSink]]:
    sink = RecordingSink()
    with serve(build_app(sink, CollectorSettings(write_key=KEY))) as url:
        yield url, sink


def _post(
    url: str, call: str, body: object, key: str | None = KEY, **headers: str
) -> requests.Response:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    auth = (key, "") if key is not None else None
    return requests.post(
        f"{url}/v1/{call}",
        data=data,
        auth=auth,
        timeout=10,
        headers={"Content-Type": "application/json", **headers},
    )


def test_each_call_is_accepted_and_enriched(collector: tuple[str, RecordingSink]) -> None:
    url, sink = collector
    calls = {
        "identify": {"userId": "u1", "traits": {"email": "a@example.com"}},
        "track": {"anonymousId": "a1", "event": "Product Viewed", "properties": {"x": 1}},
        "page": {"anonymousId": "a1", "name": "Home"},
        "screen": {"userId": "u1", "name": "Cart"},
        "alias": {"userId": "u1", "previousId": "a1"},
        "group": {"userId": "u1", "groupId": "g1"},
    }
    for call, body in calls.items():
        response = _post(url, call, body)
        assert response.status_code == 200, response.text
        assert response.json() == {"success": True}
    assert [m["type"] for m in sink.messages] == list(calls)
    assert all(m["messageId"] and m["receivedAt"] and m["timestamp"] for m in sink.messages)
    batch = {
        "batch": [
            {"type": "track", "userId": "u2", "event": "Order Completed", "messageId": "kept-id"}
        ],
        "context": {"library": {"name": "x"}},
    }
    assert _post(url, "batch", batch).status_code == 200
    assert sink.messages[-1]["messageId"] == "kept-id"
    assert sink.messages[-1]["context"] == {"library": {"name": "x"}}


def test_wrong_or_missing_write_key_is_401(collector: tuple[str, RecordingSink]) -> None:
    url, sink = collector
    body = {"anonymousId": "a1", "event": "x"}
    assert _post(url, "track", body, key="wrong").status_code == 401
    assert _post(url, "track", body, key=None).status_code == 401
    assert _post(url, "track", {**body, "writeKey": KEY}, key=None).status_code == 200
    assert len(sink.messages) == 1


def test_oversize_is_413(collector: tuple[str, RecordingSink]) -> None:
    url, sink = collector
    big = {"anonymousId": "a1", "event": "x", "properties": {"blob": "x" * 40_000}}
    assert _post(url, "track", big).status_code == 413
    batch = {
        "batch": [
            {
                "type": "track",
                "anonymousId": "a1",
                "event": "x",
                "properties": {"blob": "y" * 20_000},
            }
            for _ in range(30)
        ]
    }
    assert _post(url, "batch", batch).status_code == 413
    one_big = {
        "batch": [
            {"type": "track", "anonymousId": "a1", "event": "x"},
            {
                "type": "track",
                "anonymousId": "a1",
                "event": "x",
                "properties": {"blob": "z" * 40_000},
            },
        ]
    }
    response = _post(url, "batch", one_big)
    assert response.status_code == 413 and response.json()["details"] == {"index": 1}
    assert sink.messages == []


def test_malformed_or_incomplete_messages_are_400_and_never_stored(
    collector: tuple[str, RecordingSink],
) -> None:
    url, sink = collector
    cases = [
        ("track", b'{"anonymousId": "a1", "event": '),
        ("track", {"event": "Product Viewed"}),
        ("track", {"anonymousId": "a1"}),
        ("alias", {"userId": "u1"}),
        ("identify", {"userId": "u1", "traits": {"email": "not an email"}}),
        ("batch", {"batch": []}),
        (
            "batch",
            {
                "batch": [
                    {"type": "track", "anonymousId": "a", "event": "ok"},
                    {"type": "track", "event": "no ids"},
                ]
            },
        ),
    ]
    for call, body in cases:
        response = _post(url, call, body)
        assert response.status_code == 400, (call, body, response.text)
        assert "error" in response.json()
    rejected = _post(url, "batch", cases[-1][1]).json()
    assert rejected["details"] == [{"index": 1, "reason": "missing_identity"}]
    assert sink.messages == [], "a rejected batch stores nothing"


def test_gzip_bodies_from_client_libraries_are_accepted(
    collector: tuple[str, RecordingSink],
) -> None:
    url, sink = collector
    body = gzip.compress(orjson.dumps({"batch": [{"type": "page", "anonymousId": "a9"}]}))
    assert _post(url, "batch", body, **{"Content-Encoding": "gzip"}).status_code == 200
    assert sink.messages[0]["anonymousId"] == "a9"


def test_without_kafka_events_land_through_the_batch_path(platform_home: Paths) -> None:
    import segment.analytics as analytics

    sink = LandingSink(Path(platform_home.landing_url))
    with serve(build_app(sink, CollectorSettings(write_key=KEY))) as url:
        client = analytics.Client(KEY, host=url, sync_mode=True, max_retries=1)
        for n in range(25):
            client.track(
                user_id=f"user-{n}", event="Product Viewed", properties={"product_id": f"P{n:04d}"}
            )
        client.identify("user-1", {"email": "one@example.com"})
        client.flush()
    files = list((Path(platform_home.landing_url) / "web_events").rglob("collector-*.jsonl"))
    assert files
    materialize_events(platform_home)
    landed = read_table(platform_home, "web_events")
    assert landed.height == 26
    assert landed.filter(pl.col("type") == "identify")["email"].to_list() == ["one@example.com"]
    assert landed["message_id"].n_unique() == 26


def test_concurrent_requests_are_validated_together_and_answered_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from inboxgraph import collector as collector_module

    calls: list[int] = []
    validate = collector_module.validation_reasons

    def counted(encoded: list[str]) -> list[str | None]:
        calls.append(len(encoded))
        return validate(encoded)

    monkeypatch.setattr(collector_module, "validation_reasons", counted)
    now = datetime.now(UTC).isoformat()
    good = orjson.dumps(
        {"type": "track", "anonymousId": "a", "event": "e", "messageId": "same", "timestamp": now}
    )
    no_ids = orjson.dumps({"type": "track", "event": "e", "messageId": "m2", "timestamp": now})
    requests_ = [[good.decode()], [no_ids.decode(), good.decode()], [good.decode()]]

    async def validate_all() -> list[list[str | None]]:
        validator = collector_module.GroupValidator()
        return await asyncio.gather(*(validator.reasons(lines) for lines in requests_))

    reasons = asyncio.run(validate_all())

    assert calls == [4], "the three requests were validated in one call"
    # The repeated message id across requests is only a duplicate flag, which is accepted.
    assert reasons[0] == [None]
    assert reasons[1][0] == "missing_identity"
    assert all(r in collector_module.ACCEPTED_REASONS for r in reasons[1][1:] + reasons[2])
