"""Fuzzing the collector's endpoints: whatever arrives, the answer is a 200 or a 4xx with a JSON
reason (never a 500), and nothing invalid is stored."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import orjson
import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from inboxgraph.collector import (
    ACCEPTED_REASONS,
    CALLS,
    CollectorSettings,
    build_app,
    validation_reasons,
)
from tests.stream.server import serve

KEY = "fuzz-key"
LIMITS = CollectorSettings(
    write_key=KEY, rate_per_client=1e6, burst_per_client=10**6, burst_per_key=10**6
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.sampled_from(["", "null", "undefined", "0", "2026-11-27T10:00:00Z", "a@example.com"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
fields = ("type", "anonymousId", "userId", "event", "name", "messageId", "timestamp")
fields += ("traits", "properties", "context", "previousId", "groupId", "sentAt", "writeKey")
messages = st.fixed_dictionaries(
    {},
    optional={
        name: json_values | st.text(min_size=1, max_size=12) | st.sampled_from(CALLS)
        for name in fields
    },
)

# Near-valid messages: the required fields right, everything around them arbitrary.
near_valid = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["track", "page", "screen", "identify"]),
        "anonymousId": st.text(min_size=1, max_size=12),
        "event": st.text(min_size=1, max_size=12),
    },
    optional={
        name: json_values
        for name in ("userId", "properties", "traits", "context", "timestamp", "messageId")
    },
)
messages = messages | near_valid


def _nested(depth: int) -> bytes:
    return b'{"anonymousId": "a", "event": "e", "properties": ' + b"[" * depth + b"]" * depth + b"}"


bodies = st.one_of(
    messages.map(orjson.dumps),
    st.lists(messages | json_values, max_size=5).map(lambda b: orjson.dumps({"batch": b})),
    st.fixed_dictionaries({"batch": json_values}).map(orjson.dumps),
    json_values.map(lambda v: orjson.dumps(v)),
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"\xff\xfe{not utf-8}",
            b'{"anonymousId": "\xed\xa0\x80", "event": "surrogate"}',
            _nested(300),
            _nested(5_000),
            orjson.dumps({"anonymousId": "a", "event": "x" * 40_000}),
            orjson.dumps({"batch": [{"type": "track", "anonymousId": "a", "event": "e"}] * 5000}),
            orjson.dumps({"anonymousId": "a", "event": "e", "properties": list(range(9000))}),
            b'{"anonymousId": "a", "event": "e", "properties": {"n": 1234567890123456789012}}',
            b"",
            b"{}",
        ]
    ),
)


class RecordingSink:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    def write(self, messages: list[dict]) -> None:
        self.messages.extend(messages)


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[str, RecordingSink]]:
    sink = RecordingSink()
    with serve(build_app(sink, LIMITS), LIMITS) as url:
        yield url, sink


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Valid requests always run too (a random mix rarely produces one): what the collector stores
# from them, and from any valid request the fuzzer finds, is checked below.
@example(
    path="track",
    method="POST",
    body=orjson.dumps({"anonymousId": "a1", "event": "Product Viewed"}),
    encoding="",
    key=KEY,
)
@example(
    path="batch",
    method="POST",
    body=orjson.dumps({"batch": [{"type": "identify", "userId": "u1", "traits": {"x": [1]}}]}),
    encoding="gzip",
    key=KEY,
)
@given(
    path=st.sampled_from([*CALLS, "batch"])
    | st.sampled_from(["unknown", "", "batch/extra", "Track", "batch%00"]),
    method=st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE", "PATCH"]),
    body=bodies,
    encoding=st.sampled_from(["", "", "gzip", "deflate", "br", "gzip-but-not-really"]),
    key=st.sampled_from([KEY, KEY, None, "wrong"]),
)
def test_every_answer_is_a_200_or_a_4xx_with_a_json_reason(
    collector: tuple[str, RecordingSink],
    path: str,
    method: str,
    body: bytes,
    encoding: str,
    key: str | None,
) -> None:
    url, _ = collector
    headers = {"Content-Type": "application/json"}
    data = body
    if encoding == "gzip":
        data = gzip.compress(body)
    if encoding:
        headers["Content-Encoding"] = encoding.replace("-but-not-really", "")
    response = requests.request(
        method,
        f"{url}/v1/{path}",
        data=data,
        headers=headers,
        auth=(key, "") if key else None,
        timeout=30,
    )
    assert response.status_code == 200 or 400 <= response.status_code < 500, response.text
    payload = response.json()
    if response.status_code == 200:
        assert payload == {"success": True}
    else:
        assert isinstance(payload.get("error"), str) and payload["error"]


def test_nothing_invalid_was_stored(collector: tuple[str, RecordingSink]) -> None:
    _, sink = collector
    assert sink.messages, "the valid examples were stored"
    encoded = [orjson.dumps(m).decode() for m in sink.messages]
    assert all(reason in ACCEPTED_REASONS for reason in validation_reasons(encoded))
