"""Export formats and deltas, on tiny frames."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import polars as pl

from inboxgraph.activation import (
    BRAZE_BATCH_LIMIT,
    Delta,
    ExportStore,
    braze_bodies,
    compute_delta,
    export,
    klaviyo_files,
    mailchimp_files,
    mask_email,
)
from inboxgraph.storage import STALE_AFTER_SECONDS

MEMBER = {
    "segment_id": pl.String,
    "person_id": pl.String,
    "email": pl.String,
    "first_name": pl.String,
    "last_name": pl.String,
    "top_category": pl.String,
    "featured_products": pl.List(pl.String),
    "lifetime_value_tier": pl.String,
}
STATE = {k: MEMBER[k] for k in ("segment_id", "person_id", "email")}


def _member(person: str, email: str) -> dict:
    return {
        "segment_id": "s",
        "person_id": person,
        "email": email,
        "first_name": "A",
        "last_name": None,
        "top_category": "Shoes",
        "featured_products": ["P1", "P2"],
        "lifetime_value_tier": "top",
    }


def test_csv_formats_name_their_columns_as_the_esps_do() -> None:
    added = pl.DataFrame([_member("p", "a@x.com")], schema=MEMBER)
    removed = pl.DataFrame(
        [{"segment_id": "s", "person_id": "q", "email": "b@x.com"}], schema=STATE
    )
    mailchimp = mailchimp_files("s", Delta(added, removed))
    assert mailchimp == {
        "s-add.csv": b"Email Address,First Name,Last Name,Tags,TOP_CATEGORY,PRODUCTS,LTV_TIER\n"
        b"a@x.com,A,,s,Shoes,P1|P2,top\n",
        "s-remove.csv": b"Email Address,Tags\nb@x.com,s\n",
    }
    klaviyo = klaviyo_files("s", Delta(added, removed))
    assert klaviyo["s-add.csv"].splitlines()[0] == (
        b"Email,First Name,Last Name,top_category,featured_products,lifetime_value_tier"
    )
    assert klaviyo["s-remove.csv"] == b"Email\nb@x.com\n"
    assert mailchimp_files("s", Delta(added.clear(), removed.clear())) == {}


def test_braze_batches_stay_within_the_request_limit() -> None:
    added = pl.DataFrame([_member(f"p{n}", f"{n}@x.com") for n in range(160)], schema=MEMBER)
    bodies = braze_bodies("s", Delta(added, pl.DataFrame(schema=STATE)))
    batches = [orjson.loads(body) for body in bodies]
    assert [len(b["attributes"]) for b in batches] == [BRAZE_BATCH_LIMIT, BRAZE_BATCH_LIMIT, 10]
    assert batches[0]["attributes"][0]["inboxgraph_segments"] == {"add": ["s"]}


def test_delta_adds_newcomers_and_removes_leavers_only() -> None:
    current = pl.DataFrame([_member("p1", "1@x.com"), _member("p2", "2@x.com")], schema=MEMBER)
    previous = pl.DataFrame(
        [
            {"segment_id": "s", "person_id": "p2", "email": "2@x.com"},
            {"segment_id": "s", "person_id": "p3", "email": "3@x.com"},
        ],
        schema=STATE,
    )
    delta = compute_delta(current, previous)
    assert delta.added["person_id"].to_list() == ["p1"]
    assert delta.removed["person_id"].to_list() == ["p3"]
    assert compute_delta(current, current.select(list(STATE))).empty


def test_masked_addresses_hide_the_local_part() -> None:
    masked = mask_email("jane.doe@example.com")
    assert masked.endswith("@example.com") and "jane" not in masked


def test_an_export_that_died_leaves_nothing_a_later_export_keeps(tmp_path: Path) -> None:
    store = ExportStore(tmp_path)
    died = tmp_path / "braze" / ".20261101T000000000000Z.0123.tmp"
    died.mkdir(parents=True)
    (died / "s-batch-00001.json").write_bytes(b"{")
    recent = tmp_path / "braze" / ".20261101T000001000000Z.4567.tmp"
    recent.mkdir()
    old = time.time() - STALE_AFTER_SECONDS - 60
    os.utime(died, (old, old))
    added = pl.DataFrame([_member("p1", "1@x.com")], schema=MEMBER)
    counts = export(store, "braze", added, "20261102T000000000000Z")
    assert counts["_files"] == {"written": 1}
    # The dead export's folder is gone; one still being written (recent) is left alone.
    assert sorted(p.name for p in (tmp_path / "braze").iterdir()) == [
        recent.name,
        "20261102T000000000000Z",
    ]
    body = orjson.loads(
        (tmp_path / "braze" / "20261102T000000000000Z" / "s-batch-00001.json").read_bytes()
    )
    assert body["attributes"][0]["external_id"] == "p1"
