"""GA4 and Mixpanel beside Segment: one person across the three tools and the shop, one order
however many tools saw it, junk ids that never link, and every bad record quarantined."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import polars as pl
import pytest

from inboxgraph.privacy import forget
from inboxgraph.resources.lake import LakeResource
from inboxgraph.settings import Paths
from tests.assets.lake_helpers import materialize_events, read_table, reasons
from tests.conftest import home_environment
from tests.warehouse.scenario import Landing, ago, land_and_build, person_of, query

GA4_JUNK = ("null", "undefined", "0")


def _cross_tool_buyer(land: Landing) -> None:
    # Seen anonymously in GA4, logged in there, identified in Mixpanel (with the address a
    # super property carries), buying in the shop; GA4 and Mixpanel both report the purchase.
    land.ga4_event(
        "page_view", ago(10), "ga-anon-1", params={"page_location": "https://shop.example.com/"}
    )
    land.ga4_event(
        "view_item",
        ago(10, 1),
        "ga-anon-1",
        items=[
            {
                "item_id": "P0001",
                "item_name": "Shirt",
                "item_category": "Apparel",
                "price": 40.0,
                "quantity": 1,
            }
        ],
    )
    land.ga4_event("login", ago(9), "ga-anon-1", "u-cross", params={"method": "email"})
    land.mixpanel_event(
        "Product Viewed",
        ago(8),
        "mp-dev-1",
        "u-cross",
        product_id="P0001",
        category="Apparel",
        **{"$email": " Cross.Buyer@Example.com "},
    )
    land.customer(601, "cross.buyer@example.com")
    land.order("ORD-CROSS-1", 601, 80.0, ago(7))
    land.ga4_event(
        "purchase",
        ago(7),
        "ga-anon-1",
        "u-cross",
        ecommerce={
            "transaction_id": "ORD-CROSS-1",
            "purchase_revenue": 80.0,
            "total_item_quantity": 2,
        },
        items=[{"item_id": "P0001", "item_category": "Apparel", "price": 40.0, "quantity": 2}],
    )
    land.mixpanel_event(
        "Purchase", ago(7), "mp-dev-1", "u-cross", order_id="ORD-CROSS-1", revenue=80.0
    )


def _two_tools_one_order(land: Landing) -> None:
    # Segment and GA4 both see the same web order; the shop database does not have it.
    land.identify(ago(6), "seg-anon-2", "u-dup", email="dup.order@example.com", email_opt_in=True)
    land.track("Order Completed", ago(5), "seg-anon-2", "u-dup", order_id="ORD-WEB-2", revenue=30.0)
    land.ga4_event(
        "purchase",
        ago(5),
        "ga-anon-2",
        "u-dup",
        ecommerce={"transaction_id": "ORD-WEB-2", "purchase_revenue": 30.0},
    )


def _junk_ids(land: Landing) -> None:
    for n, junk in enumerate(GA4_JUNK):
        land.ga4_event("page_view", ago(4), junk, f"u-ga-junk{n}")
        land.ga4_event("page_view", ago(4), junk, f"u-ga-junk{n}-other")
        land.mixpanel_event("Product Viewed", ago(4), junk, f"u-mp-junk{n}")
        land.mixpanel_event("Product Viewed", ago(4), junk, f"u-mp-junk{n}-other")
    land.ga4_event("page_view", ago(4), "(not set)", "u-ga-notset")
    land.ga4_event("page_view", ago(4), "(not set)", "u-ga-notset-other")


GA4_BAD = {
    "invalid_json": ['{"event_name": "page_view", "event_timestamp": "17'],
    "missing_identity": [{"user_pseudo_id": None, "user_id": None}],
    "impossible_timestamp": [{"event_timestamp": "946684799000000"}],
    "wrong_type": [{"event_timestamp": "soon"}, {"items": {"item_id": "P1"}}],
    "bad_event_params": [
        {"event_params": {"page_location": "https://shop.example.com/"}},
        {"event_params": [{"key": "a", "value": {"string_value": "1"}}, {"key": "a", "value": {}}]},
        {"event_params": [{"value": {"string_value": "no key"}}]},
    ],
    "missing_event_name": [{"event_name": " "}],
}
MIXPANEL_BAD = {
    "invalid_json": ['{"event": "Product Viewed", "properties": {'],
    "wrong_type": ['{"event": "x", "properties": "time=1"}'],
    "missing_insert_id": [{"$insert_id": None}],
    "missing_identity": [{"distinct_id": "", "$device_id": None, "$user_id": None}],
    "impossible_timestamp": [{"time": 4102444800}],
    "invalid_email": [{"$email": "not an address"}],
}


def _bad_records(land: Landing) -> None:
    day = ago(3).strftime("%Y-%m-%d")
    for reason, variants in GA4_BAD.items():
        for variant in variants:
            if isinstance(variant, str):
                land.ga4.append((day, variant))
                continue
            row = land.ga4_event("page_view", ago(3), f"ga-bad-{reason}")
            land.ga4.pop()
            land.ga4.append((day, {**row, **variant}))
    twice = land.ga4_event("page_view", ago(3), "ga-twice")
    land.ga4.append((day, twice))  # the same exported row again: a duplicate
    for reason, variants in MIXPANEL_BAD.items():
        for variant in variants:
            if isinstance(variant, str):
                land.mixpanel.append((day, variant))
                continue
            line = land.mixpanel_event("Product Viewed", ago(3), f"mp-bad-{reason}")
            line["properties"].update(variant)
    again = land.mixpanel_event("Product Viewed", ago(3), "mp-twice")
    land.mixpanel.append((day, {**again, "properties": {**again["properties"], "extra": 1}}))
    # A parameter and a property no one has declared: kept, and reported as drift.
    land.ga4_event("page_view", ago(3), "ga-drift", params={"loyalty_tier": "gold"})
    land.mixpanel_event("Product Viewed", ago(3), "mp-drift", loyalty_tier="gold")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    with home_environment(tmp_path_factory.mktemp("web-analytics")) as paths:
        land = Landing()
        _cross_tool_buyer(land)
        _two_tools_one_order(land)
        _junk_ids(land)
        _bad_records(land)
        land.write(Path(paths.landing_url))
        land_and_build(paths)
        yield paths


def _profile(paths: Paths, person_id: str) -> dict:
    rows = query(
        paths,
        "select transactions.order_count, transactions.lifetime_value, behavior.product_views, "
        "behavior.page_views, email from marts.customer_profiles where person_id = ?",
        person_id,
    )
    assert len(rows) == 1
    return dict(
        zip(("orders", "ltv", "product_views", "page_views", "email"), rows[0], strict=True)
    )


def test_a_person_across_ga4_mixpanel_and_the_shop_is_one_profile_with_one_order(
    warehouse: Paths,
) -> None:
    people = {
        person_of(warehouse, kind, value)
        for kind, value in (
            ("anonymous_id", "ga-anon-1"),
            ("user_id", "u-cross"),
            ("anonymous_id", "mp-dev-1"),
            ("email", "cross.buyer@example.com"),
            ("customer_id", "601"),
        )
    }
    assert len(people) == 1 and None not in people
    profile = _profile(warehouse, people.pop())
    assert profile["email"] == "cross.buyer@example.com"
    assert (profile["orders"], float(profile["ltv"])) == (1, 80.0)
    assert profile["product_views"] == 2  # GA4 view_item and Mixpanel's Product Viewed
    assert profile["page_views"] == 1


def test_a_ga4_purchase_and_a_segment_order_for_the_same_order_count_once(
    warehouse: Paths,
) -> None:
    person = person_of(warehouse, "user_id", "u-dup")
    assert person == person_of(warehouse, "anonymous_id", "ga-anon-2")
    profile = _profile(warehouse, person)
    assert (profile["orders"], float(profile["ltv"])) == (1, 30.0)


def test_junk_ga4_and_mixpanel_ids_never_link_people(warehouse: Paths) -> None:
    for prefix in ("u-ga-junk", "u-mp-junk"):
        for n in range(len(GA4_JUNK)):
            one = person_of(warehouse, "user_id", f"{prefix}{n}")
            other = person_of(warehouse, "user_id", f"{prefix}{n}-other")
            assert one and other and one != other
    assert person_of(warehouse, "user_id", "u-ga-notset") != person_of(
        warehouse, "user_id", "u-ga-notset-other"
    )
    junk = query(
        warehouse,
        "select identifier_value from marts.identity_map where identifier_type = 'anonymous_id' "
        "and lower(identifier_value) in ('null', 'undefined', '0', '(not set)')",
    )
    assert junk == []


def test_identity_links_name_the_source_and_rule_of_each_link(warehouse: Paths) -> None:
    rows = query(
        warehouse,
        "select left_value, right_value, source, rule from marts.identity_links "
        "where right_value in ('u-cross', 'cross.buyer@example.com') "
        "and left_value in ('ga-anon-1', 'mp-dev-1', 'u-cross')",
    )
    found = {(left, right): (source, rule) for left, right, source, rule in rows}
    assert found[("ga-anon-1", "u-cross")] == ("ga4_events", "event_ids")
    assert found[("mp-dev-1", "u-cross")] == ("mixpanel_events", "event_ids")
    assert found[("u-cross", "cross.buyer@example.com")] == ("mixpanel_events", "event_email")


def test_every_bad_ga4_and_mixpanel_record_is_quarantined_with_its_reason(
    warehouse: Paths,
) -> None:
    expected_ga4 = {reason: len(variants) for reason, variants in GA4_BAD.items()}
    assert reasons(warehouse, "ga4_events") == {**expected_ga4, "duplicate_event": 1}
    expected_mp = {reason: len(variants) for reason, variants in MIXPANEL_BAD.items()}
    assert reasons(warehouse, "mixpanel_events") == {**expected_mp, "duplicate_insert_id": 1}
    # Records in = landed + quarantined, per file.
    landing = Path(warehouse.landing_url)
    for source, folder in (("ga4_events", "ga4"), ("mixpanel_events", "mixpanel")):
        lines = sum(
            len([x for x in path.read_bytes().splitlines() if x.strip()])
            for path in landing.joinpath(folder).rglob("*.jsonl")
        )
        landed = read_table(warehouse, source).height
        quarantined = read_table(warehouse, source, "quarantine").height
        assert lines == landed + quarantined


def test_new_parameters_and_properties_are_kept_and_reported_as_drift(warehouse: Paths) -> None:
    ga4 = read_table(warehouse, "ga4_events").filter(pl.col("user_pseudo_id") == "ga-drift")
    assert orjson.loads(ga4["params"][0])["loyalty_tier"] == "gold"
    mixpanel = read_table(warehouse, "mixpanel_events").filter(pl.col("device_id") == "mp-drift")
    assert orjson.loads(mixpanel["properties"][0])["loyalty_tier"] == "gold"
    result = materialize_events(warehouse)
    drift = {
        evaluation.asset_key.path[-1]: evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.check_name == "schema_drift"
    }
    assert not drift["ga4_events"].passed
    assert "event_params.loyalty_tier" in drift["ga4_events"].metadata["new_fields"].value
    assert "properties.loyalty_tier" in drift["mixpanel_events"].metadata["new_fields"].value
    assert "event_params.page_location" not in drift["ga4_events"].metadata["new_fields"].value


def test_erasure_removes_the_person_from_ga4_and_mixpanel_landing_and_lake(
    warehouse: Paths,
) -> None:
    """Last in the module: it erases the cross-tool buyer from the shared home."""
    person, receipt = forget(
        email="cross.buyer@example.com",
        user_id=None,
        landing=Path(warehouse.landing_url),
        lake=LakeResource(url=warehouse.lake_url),
        warehouse=warehouse.warehouse,
        exports=Path(warehouse.exports),
        shop_db_url=warehouse.shop_db_url,
    )
    assert {"ga-anon-1", "mp-dev-1", "u-cross"} <= person.values
    landing = Path(warehouse.landing_url)
    for folder in ("ga4", "mixpanel"):
        text = b"".join(p.read_bytes() for p in (landing / folder).rglob("*.jsonl"))
        assert b"ga-anon-1" not in text and b"mp-dev-1" not in text and b"u-cross" not in text
    ga4 = read_table(warehouse, "ga4_events")
    assert ga4.filter(pl.col("user_pseudo_id") == "ga-anon-1").is_empty()
    mixpanel = read_table(warehouse, "mixpanel_events")
    assert mixpanel.filter(pl.col("device_id") == "mp-dev-1").is_empty()
    assert any("ga4_events" in name for name in receipt.files)
    assert any("mixpanel_events" in name for name in receipt.files)
    # Landed again (a vendor re-export holding the person), the tombstones keep them out.
    land = Landing()
    land.ga4_event("page_view", ago(2), "ga-anon-1", "u-cross")
    land.mixpanel_event("Product Viewed", ago(2), "mp-dev-1")
    land.write(landing)
    materialize_events(warehouse)
    assert (
        read_table(warehouse, "ga4_events")
        .filter(pl.col("user_pseudo_id") == "ga-anon-1")
        .is_empty()
    )
    assert (
        read_table(warehouse, "mixpanel_events")
        .filter(pl.col("device_id") == "mp-dev-1")
        .is_empty()
    )
