"""Identity resolution, email status and segments, end to end through the lake and dbt."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest

from inboxgraph.explain import describe, explain
from inboxgraph.resources.lake import LakeResource
from inboxgraph.settings import Paths
from inboxgraph.stream_files import STREAM_SOURCE, batch_file_name
from inboxgraph.transforms import web_events
from inboxgraph.transforms.common import split_quarantine
from tests.conftest import home_environment, inboxgraph_cli, outside_environment
from tests.warehouse.scenario import AS_OF, Landing, ago, land_and_build, person_of, query

JUNK = ("null", "undefined", "anonymous", "0", "")


def _identity_people(land: Landing) -> None:
    # A chain across all five sources, emails differing in case and white space.
    land.page(ago(20), anonymous_id="anon-chain")
    land.identify(
        ago(19), "anon-chain", "u-chain", email="  Chain.Person@Example.COM ", email_opt_in=True
    )
    land.contact("9001", "chain.person@example.com", optout=False, at=ago(18))
    land.customer(501, "CHAIN.PERSON@example.com ")
    land.order("ORD-CHAIN-1", 501, 40.0, ago(15))
    land.esp_event("chain.person@example.com", "delivered", ago(10))
    land.enrichment.append(
        {"email": "Chain.Person@example.com", "company": "Chain Labs", "job_title": "Engineer"}
    )
    # Alias: an anonymous visitor aliased to a user id.
    land.track("Product Viewed", ago(12), anonymous_id="anon-alias")
    land.alias(ago(11), "anon-alias", "u-alias")
    land.page(ago(11), user_id="u-alias")
    # Many anonymous ids (devices) to one user.
    for device in ("anon-m1", "anon-m2", "anon-m3"):
        land.identify(ago(9), device, "u-many")
    # Junk anonymous ids shared by different users must not link them.
    for n, junk in enumerate(JUNK):
        land.page(ago(8), anonymous_id=junk, user_id=f"u-junk{n}")
        land.page(ago(8), anonymous_id=junk, user_id=f"u-junk{n}-other")
    # A shared device: one anonymous id used by two different users.
    land.identify(ago(7), "anon-shared", "u-share1")
    land.identify(ago(6), "anon-shared", "u-share2")
    # The same person in the CRM and the shop with different spellings of one address.
    land.contact("9002", "  Variant@Example.com", optout=False, at=ago(30))
    land.customer(502, "variant@example.COM")
    # Two people now, one after a later event links them.
    land.page(ago(5), anonymous_id="anon-late")
    land.identify(ago(5), "anon-late2", "u-late", email="late@example.com")


def _segment_people(land: Landing) -> None:
    def subscribed(name: str, contact_id: str) -> str:
        email = f"{name}@example.com"
        land.identify(ago(60), f"anon-{name}", f"u-{name}", email=email)
        land.contact(contact_id, email, optout=False, at=ago(60))
        return f"u-{name}"

    user = subscribed("cart6", "9101")
    land.track("Product Added", ago(6), user_id=user)
    user = subscribed("cart8", "9102")
    land.track("Product Added", ago(8), user_id=user)
    user = subscribed("cartbought", "9103")
    land.track("Checkout Started", ago(3), user_id=user)
    land.track("Order Completed", ago(2), user_id=user, order_id="ORD-WEB-1", revenue=30.0)
    land.identify(ago(60), "anon-cartunsub", "u-cartunsub", email="cartunsub@example.com")
    land.contact("9104", "cartunsub@example.com", optout=True, at=ago(60))
    land.track("Product Added", ago(2), user_id="u-cartunsub")
    for name, contact_id, customer_id, days, total in (
        ("lapsed89", "9105", 601, 89, 20.0),
        ("lapsed91", "9106", 602, 91, 25.0),
        ("whale", "9107", 603, 10, 5000.0),
        ("median1", "9108", 604, 12, 50.0),
        ("median2", "9109", 605, 13, 55.0),
        ("median3", "9110", 606, 14, 60.0),
    ):
        email = f"{name}@example.com"
        land.contact(contact_id, email, optout=False, at=ago(100))
        land.customer(customer_id, email)
        land.order(f"ORD-{name}", customer_id, total, ago(days))
    land.contact("9111", "reader29@example.com", optout=False, at=ago(100))
    land.esp_event("reader29@example.com", "open", ago(29))
    land.contact("9112", "reader31@example.com", optout=False, at=ago(100))
    land.esp_event("reader31@example.com", "click", ago(31))


def _status_people(land: Landing) -> None:
    land.contact("9201", "complainer@example.com", optout=False, at=ago(50))
    land.esp_event("complainer@example.com", "spamreport", ago(5))
    land.contact("9202", "bouncer@example.com", optout=False, at=ago(50))
    land.esp_event("bouncer@example.com", "delivered", ago(9))
    land.esp_event("bouncer@example.com", "bounce", ago(8), reason="550 no such user")
    land.contact("9203", "dropped@example.com", optout=False, at=ago(50))
    land.esp_event("dropped@example.com", "dropped", ago(8), reason="Bounced Address")
    land.contact("9204", "recovered@example.com", optout=False, at=ago(50))
    land.esp_event("recovered@example.com", "bounce", ago(8), reason="552 mailbox full")
    land.esp_event("recovered@example.com", "delivered", ago(4))
    land.contact("9205", "espunsub@example.com", optout=False, at=ago(50))
    land.esp_event("espunsub@example.com", "unsubscribe", ago(4))
    land.contact("9206", "crmoptout@example.com", optout=True, at=ago(50))
    land.identify(
        ago(40),
        "anon-traitunsub",
        "u-traitunsub",
        email="traitunsub@example.com",
        email_opt_in=True,
    )
    land.identify(ago(3), "anon-traitunsub", "u-traitunsub", unsubscribed=True)
    land.contact("9207", "resub@example.com", optout=False, at=ago(50))
    land.esp_event("resub@example.com", "group_unsubscribe", ago(6))
    land.esp_event("resub@example.com", "group_resubscribe", ago(2))
    land.identify(ago(3), "anon-optin", "u-optin", email="optin@example.com", email_opt_in=True)
    land.esp_event("nosignal@example.com", "delivered", ago(3))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    with home_environment(tmp_path_factory.mktemp("warehouse")) as paths:
        land = Landing()
        _identity_people(land)
        _segment_people(land)
        _status_people(land)
        land.write(Path(paths.landing_url))
        land_and_build(paths)
        yield paths


# ---------------------------------------------------------------------- identity
def test_a_chain_across_all_five_sources_is_one_person(warehouse: Paths) -> None:
    people = {
        person_of(warehouse, kind, value)
        for kind, value in (
            ("anonymous_id", "anon-chain"),
            ("user_id", "u-chain"),
            ("email", "chain.person@example.com"),
            ("hubspot_id", "9001"),
            ("customer_id", "501"),
        )
    }
    assert len(people) == 1 and None not in people
    (person,) = people
    email, company, orders, status = query(
        warehouse,
        "select email, demographics.company, transactions.order_count, "
        "preferences.email_status from marts.customer_profiles where person_id = ?",
        person,
    )[0]
    assert (email, company, orders, status) == (
        "chain.person@example.com",
        "Chain Labs",
        1,
        "subscribed",
    )
    reasons = query(
        warehouse,
        "select distinct rule from marts.identity_links where person_id = ? and applied",
        person,
    )
    assert {r[0] for r in reasons} >= {"identify", "identify_email", "crm_contact", "shop_customer"}


def test_alias_merges_the_anonymous_visitor_into_the_user(warehouse: Paths) -> None:
    assert person_of(warehouse, "anonymous_id", "anon-alias") == person_of(
        warehouse, "user_id", "u-alias"
    )


def test_many_anonymous_ids_resolve_to_one_user(warehouse: Paths) -> None:
    user = person_of(warehouse, "user_id", "u-many")
    devices = {person_of(warehouse, "anonymous_id", d) for d in ("anon-m1", "anon-m2", "anon-m3")}
    assert devices == {user}


def test_junk_identifiers_never_link_and_never_appear(warehouse: Paths) -> None:
    for n in range(len(JUNK)):
        assert person_of(warehouse, "user_id", f"u-junk{n}") != person_of(
            warehouse, "user_id", f"u-junk{n}-other"
        )
    stored = query(
        warehouse,
        "select identifier_value from marts.identity_map where identifier_type = 'anonymous_id'",
    )
    assert not {value for (value,) in stored} & set(JUNK)


def test_a_shared_device_attaches_to_one_user_only(warehouse: Paths) -> None:
    first = person_of(warehouse, "user_id", "u-share1")
    second = person_of(warehouse, "user_id", "u-share2")
    assert first != second
    assert person_of(warehouse, "anonymous_id", "anon-shared") == first
    kept_apart = query(
        warehouse,
        "select rule, source from marts.identity_links where left_value = "
        "'anon-shared' and right_value = 'u-share2' and not applied",
    )
    assert kept_apart == [("identify", "web_events")]
    doubled = query(
        warehouse,
        "select person_id from marts.identity_map where "
        "identifier_type = 'user_id' group by 1 having count(*) > 1",
    )
    assert doubled == []


def test_email_case_and_white_space_variants_are_one_identifier(warehouse: Paths) -> None:
    assert person_of(warehouse, "hubspot_id", "9002") == person_of(warehouse, "customer_id", "502")
    variants = query(
        warehouse,
        "select count(*) from marts.identity_map where "
        "identifier_type = 'email' and identifier_value like '%variant%'",
    )
    assert variants == [(1,)]


def test_profiles_are_one_row_per_person(warehouse: Paths) -> None:
    ((profiles, people),) = query(
        warehouse,
        "select (select count(*) from marts.customer_profiles), "
        "(select count(distinct person_id) from marts.identity_map)",
    )
    assert profiles == people


def test_what_depends_on_the_moment_is_worked_out_where_the_profiles_are_read(
    warehouse: Paths,
) -> None:
    """customer_profiles holds nothing that changes with the clock; the view
    customer_profiles_as_of adds it, counted to the moment the view is read."""
    described = {
        name: kind for name, kind, *_ in query(warehouse, "describe marts.customer_profiles")
    }
    assert "as_of" not in described
    assert "days_since" not in described["behavior"] + described["transactions"]
    assert "rfm_cell" not in described["transactions"]
    rows = query(
        warehouse,
        "select as_of, epoch(as_of) - epoch(behavior.last_cart_event_at), "
        "behavior.days_since_last_cart_event, transactions.order_count, "
        "transactions.recency_score, transactions.rfm_cell, transactions.lifetime_value_tier "
        "from marts.customer_profiles_as_of",
    )
    (profiles,) = query(warehouse, "select count(*) from marts.customer_profiles")[0]
    assert len(rows) == profiles
    assert len({as_of for as_of, *_ in rows}) == 1, "one moment for the whole read"
    assert rows[0][0] > AS_OF, "the moment of reading, not the build's as-of"
    carts = [(seconds, days) for _, seconds, days, *_ in rows if seconds is not None]
    assert carts and all(abs(days - seconds / 86400) < 1e-6 for seconds, days in carts)
    for _, _, _, orders, recency, cell, tier in rows:
        if orders:
            assert recency in range(1, 6) and len(cell) == 3 and tier in {"top", "high", "standard"}
        else:
            assert (recency, cell, tier) == (None, None, "none")


# ---------------------------------------------------------------------- email status
@pytest.mark.parametrize(
    ("email", "status"),
    [
        ("complainer@example.com", "complained"),
        ("bouncer@example.com", "bounced"),
        ("dropped@example.com", "bounced"),
        ("recovered@example.com", "subscribed"),
        ("espunsub@example.com", "unsubscribed"),
        ("crmoptout@example.com", "unsubscribed"),
        ("traitunsub@example.com", "unsubscribed"),
        ("resub@example.com", "subscribed"),
        ("optin@example.com", "subscribed"),
        ("nosignal@example.com", "unknown"),
    ],
)
def test_email_status_rules(warehouse: Paths, email: str, status: str) -> None:
    rows = query(
        warehouse,
        "select preferences.email_status from marts.customer_profiles p "
        "join marts.identity_map m using (person_id) where "
        "m.identifier_type = 'email' and m.identifier_value = ?",
        email,
    )
    assert rows == [(status,)]


# ---------------------------------------------------------------------- segments
def _members(paths: Paths, segment: str) -> set[str]:
    rows = query(paths, "select email from marts.segment_memberships where segment_id = ?", segment)
    return {email for (email,) in rows}


def test_cart_abandoners_boundaries(warehouse: Paths) -> None:
    members = _members(warehouse, "cart_abandoners")
    assert "cart6@example.com" in members
    assert "cart8@example.com" not in members
    assert "cartbought@example.com" not in members, "bought after the cart event"
    assert "cartunsub@example.com" not in members, "unsubscribed people are never members"


def test_lapsed_customers_boundaries(warehouse: Paths) -> None:
    members = _members(warehouse, "lapsed_customers")
    assert "lapsed91@example.com" in members
    assert "lapsed89@example.com" not in members


def test_engaged_readers_boundaries(warehouse: Paths) -> None:
    members = _members(warehouse, "engaged_readers")
    assert "reader29@example.com" in members
    assert "reader31@example.com" not in members


def test_high_value_is_the_top_ten_percent_of_buyers(warehouse: Paths) -> None:
    members = _members(warehouse, "high_value")
    values = query(
        warehouse,
        "select email, transactions.lifetime_value, "
        "preferences.email_status from marts.customer_profiles "
        "where transactions.order_count > 0",
    )
    ltv = np.array([float(v) for _, v, _ in values])
    ranks = np.array([(ltv < v).sum() for v in ltv]) / (len(ltv) - 1)
    expected = {
        e for (e, _, s), r in zip(values, ranks, strict=True) if r >= 0.9 and s == "subscribed"
    }
    assert "whale@example.com" in members
    assert "median1@example.com" not in members
    assert members == expected


def test_segments_table_counts_members_as_of_the_run(warehouse: Paths) -> None:
    rows = query(warehouse, "select segment_id, member_count, as_of from marts.segments")
    assert {r[0] for r in rows} == {
        "cart_abandoners",
        "lapsed_customers",
        "engaged_readers",
        "high_value",
    }
    for segment, count, as_of in rows:
        assert count == len(_members(warehouse, segment))
        assert as_of == AS_OF


def test_only_subscribed_people_are_members(warehouse: Paths) -> None:
    rows = query(
        warehouse,
        "select count(*) from marts.segment_memberships m join "
        "marts.customer_profiles p using (person_id) where "
        "p.preferences.email_status != 'subscribed'",
    )
    assert rows == [(0,)]


# ---------------------------------------------------------------------- next run
def test_a_later_event_merges_two_people_on_the_next_run(warehouse: Paths) -> None:
    anonymous = person_of(warehouse, "anonymous_id", "anon-late")
    user = person_of(warehouse, "user_id", "u-late")
    chain = person_of(warehouse, "user_id", "u-chain")
    assert anonymous != user
    land = Landing()
    land.identify(ago(1), "anon-late", "u-late")
    land.write(Path(warehouse.landing_url))
    land_and_build(warehouse)
    assert person_of(warehouse, "anonymous_id", "anon-late") == user
    assert person_of(warehouse, "user_id", "u-late") == user, "person_id stays stable"
    assert person_of(warehouse, "user_id", "u-chain") == chain


# ---------------------------------------------------------------------- live layer
def _stream_file(paths: Paths, messages: list[dict], first_offset: int) -> None:
    """Land messages in the stream table exactly as the stream worker names and writes them."""
    now = datetime.now(UTC)
    raw = [orjson.dumps({**m, "receivedAt": now.isoformat()}).decode() for m in messages]
    lines = pl.DataFrame(
        {
            "_raw": raw,
            "_source_file": ["kafka://t/0"] * len(raw),
            "_line": range(first_offset, first_offset + len(raw)),
        },
        schema={"_raw": pl.String, "_source_file": pl.String, "_line": pl.Int64},
    )
    good, bad = split_quarantine(
        web_events.prepare(lines, now.date()), list(web_events.LANDED_COLUMNS)
    )
    assert bad.is_empty()
    lake = LakeResource(url=paths.lake_url)
    target = lake.partition_path("raw", STREAM_SOURCE, {"received_date": now.date().isoformat()})
    lake.write_file(
        target.with_name(batch_file_name("t", 0, first_offset, first_offset + len(raw) - 1)), good
    )


def test_live_profiles_move_with_the_stream_without_a_batch_run(warehouse: Paths) -> None:
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    person = person_of(warehouse, "user_id", "u-cart8")
    before = query(
        warehouse,
        "select live.page_views_today, live.last_cart_event_at from "
        "marts.customer_profiles_live where person_id = ?",
        person,
    )
    assert before[0][0] == 0
    assert "cart8@example.com" not in {
        e for (e,) in query(warehouse, "select email from marts.cart_abandoners_live")
    }
    _stream_file(
        warehouse,
        [
            {
                "type": "identify",
                "messageId": "live-1",
                "anonymousId": "anon-new-phone",
                "userId": "u-cart8",
                "timestamp": stamp,
            },
            {
                "type": "page",
                "messageId": "live-2",
                "anonymousId": "anon-new-phone",
                "timestamp": stamp,
                "name": "Home",
            },
            {
                "type": "track",
                "messageId": "live-3",
                "anonymousId": "anon-new-phone",
                "event": "Product Added",
                "timestamp": stamp,
                "properties": {"product_id": "P0001"},
            },
            {
                "type": "page",
                "messageId": "live-4",
                "anonymousId": "anon-stranger",
                "timestamp": stamp,
                "name": "Home",
            },
        ],
        first_offset=0,
    )
    views, cart_at, products = query(
        warehouse,
        "select live.page_views_today, live.last_cart_event_at, "
        "live.open_cart_product_ids from marts.customer_profiles_live "
        "where person_id = ?",
        person,
    )[0]
    assert views == 1, "the new device's page view is attributed through the identify call"
    assert cart_at is not None and cart_at.date() == now.date()
    assert products[0] == "P0001"
    assert "cart8@example.com" in {
        e for (e,) in query(warehouse, "select email from marts.cart_abandoners_live")
    }
    provisional = query(
        warehouse, "select count(*) from marts.customer_profiles_live where provisional"
    )
    assert provisional == [(1,)]
    unsubscribed = query(
        warehouse,
        "select count(*) from marts.cart_abandoners_live c join "
        "marts.customer_profiles p using (person_id) where "
        "p.preferences.email_status != 'subscribed'",
    )
    assert unsubscribed == [(0,)]


# ---------------------------------------------------------------------- explain
def test_explain_names_the_rule_and_source_record_of_every_link(warehouse: Paths) -> None:
    explanation = explain(warehouse.warehouse, "email", "  Chain.Person@Example.COM ")
    assert explanation is not None
    assert {kind for kind, _ in explanation.identifiers} == {
        "anonymous_id",
        "user_id",
        "email",
        "hubspot_id",
        "customer_id",
    }
    links = [link for link in explanation.links if link.left != link.right]
    assert links and all(link.applied for link in links)
    assert {"web_events", "hubspot_contacts", "shop_customers"} <= {link.source for link in links}
    assert all(link.rule and link.source_record_id for link in links)

    # The shared device stays with the user it was linked to first; the second user's link to
    # it is refused, and the explanation names the limit that refused it.
    shared = explain(warehouse.warehouse, "user_id", "u-share2")
    assert shared is not None
    refused = {
        frozenset((link.left, link.right)): link.refused_by
        for link in shared.links
        if not link.applied
    }
    pair = frozenset({("anonymous_id", "anon-shared"), ("user_id", "u-share2")})
    assert refused[pair] == "limit: at most 1 user_id per person"
    assert "refused by limit: at most 1 user_id per person" in "\n".join(describe(shared))

    env = outside_environment(INBOXGRAPH_HOME=warehouse.home)
    ran = inboxgraph_cli("explain", "--user-id", "u-share2", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "REFUSED" in ran.stdout and "anon-shared" in ran.stdout
    missing = inboxgraph_cli("explain", "--email", "nobody@example.com", env=env)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "no person holds that email in marts.identity_map"
