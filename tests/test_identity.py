"""The resolver's rules: limits, shared and blocked identifiers, and the overrides."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from inboxgraph.identity import EDGE_SCHEMA, IdentityRules, RulesError, load_rules, resolve

T0 = datetime(2026, 11, 1, 9)
PROJECT_RULES = load_rules()


def _edges(*links: tuple) -> pl.DataFrame:
    """Links as (left_type, left_value, right_type, right_value, minutes after T0, rule)."""
    rows = [(*link[:4], T0 + timedelta(minutes=link[4]), link[5]) for link in links]
    return pl.DataFrame(rows, schema=EDGE_SCHEMA, orient="row")


def _people(edges: pl.DataFrame, rules: IdentityRules = PROJECT_RULES) -> dict[tuple, tuple]:
    """Each identifier with its person's anchor (None for an identifier that is no one's)."""
    identifiers = resolve(edges, rules).identifiers
    return {
        (row["identifier_type"], row["identifier_value"]): (
            (row["anchor_type"], row["anchor_value"]) if row["anchor_type"] else None
        )
        for row in identifiers.iter_rows(named=True)
    }


def _refused(edges: pl.DataFrame, rules: IdentityRules = PROJECT_RULES) -> dict[frozenset, str]:
    refused = resolve(edges, rules).refused
    return {
        frozenset({(r["left_type"], r["left_value"]), (r["right_type"], r["right_value"])}): r[
            "reason"
        ]
        for r in refused.iter_rows(named=True)
    }


def test_the_project_rules_are_the_documented_defaults() -> None:
    assert PROJECT_RULES.limits == {"user_id": 1, "email": 5, "anonymous_id": 50}
    assert PROJECT_RULES.max_user_ids_per_identifier == 10


def test_an_anonymous_id_shared_by_200_users_links_none_of_them() -> None:
    links = [("anonymous_id", "kiosk", "user_id", f"u{i}", i, "event_ids") for i in range(200)]
    links += [("user_id", f"u{i}", "user_id", f"u{i}", i, "observed") for i in range(200)]
    links.append(("anonymous_id", "own", "user_id", "u7", 300, "identify"))
    edges = _edges(*links)

    people = _people(edges)
    anchors = {people[("user_id", f"u{i}")] for i in range(200)}
    assert len(anchors) == 200, "200 users stay 200 people"
    assert people[("anonymous_id", "kiosk")] is None, "the shared id belongs to no one"
    assert people[("anonymous_id", "own")] == ("user_id", "u7"), "a device of one user links"
    refused = _refused(edges)
    assert len(refused) == 200
    assert set(refused.values()) == {"shared: linked to 200 user ids (more than 10)"}
    # Every person stays within every limit.
    identifiers = resolve(edges, PROJECT_RULES).identifiers.drop_nulls("anchor_type")
    per_person = identifiers.group_by("anchor_value", "identifier_type").len()
    limits = PROJECT_RULES.limits
    assert all(
        row["len"] <= limits.get(row["identifier_type"], 10**9)
        for row in per_person.iter_rows(named=True)
    )


def test_a_device_of_two_users_stays_with_the_first_and_the_limit_says_why() -> None:
    edges = _edges(
        ("anonymous_id", "family", "user_id", "mum", 0, "identify"),
        ("anonymous_id", "family", "user_id", "son", 5, "identify"),
    )
    people = _people(edges)
    assert people[("anonymous_id", "family")] == ("user_id", "mum")
    assert people[("user_id", "son")] == ("user_id", "son")
    refused = _refused(edges)
    assert refused == {
        frozenset({("anonymous_id", "family"), ("user_id", "son")}): (
            "limit: at most 1 user_id per person"
        )
    }


def test_a_person_holds_at_most_the_limit_of_each_type_the_earliest_first() -> None:
    links = [("user_id", "u1", "email", f"a{i}@example.com", i, "identify_email") for i in range(7)]
    edges = _edges(*links)
    people = _people(edges)
    held = [i for i in range(7) if people[("email", f"a{i}@example.com")] == ("user_id", "u1")]
    assert held == [0, 1, 2, 3, 4]
    assert set(_refused(edges).values()) == {"limit: at most 5 email per person"}
    # Own limits: one address per person.
    one = IdentityRules.from_settings({"limits": {"user_id": 1, "email": 1}})
    people = _people(edges, one)
    assert [i for i in range(7) if people[("email", f"a{i}@example.com")][0] == "user_id"] == [0]


def test_blocked_values_and_patterns_link_nothing() -> None:
    rules = IdentityRules.from_settings(
        {"blocked_values": ["  Test@Example.com "], "blocked_patterns": [r"qa-.*"]}
    )
    edges = _edges(
        ("customer_id", "c1", "email", "test@example.com", 0, "shop_customer"),
        ("customer_id", "c2", "email", "test@example.com", 1, "shop_customer"),
        ("anonymous_id", "QA-device", "user_id", "u1", 2, "identify"),
        ("anonymous_id", "QA-device", "user_id", "u2", 3, "identify"),
    )
    people = _people(edges, rules)
    assert people[("email", "test@example.com")] is None
    assert people[("anonymous_id", "QA-device")] is None
    assert people[("customer_id", "c1")] == ("customer_id", "c1")
    assert people[("customer_id", "c2")] == ("customer_id", "c2")
    assert people[("user_id", "u1")] == ("user_id", "u1")
    reasons = set(_refused(edges, rules).values())
    assert reasons == {"blocked: a blocked value", "blocked: matches pattern qa-.*"}


def test_never_link_splits_a_person_and_the_anchor_side_keeps_its_id() -> None:
    # A typo'd address joined two customers: the CRM contact, the shop customer and the web user.
    observed = [
        ("user_id", "ann", "email", "ann@example.com", 0, "identify_email"),
        ("customer_id", "c-ann", "email", "ann@example.com", 1, "shop_customer"),
        ("customer_id", "c-bob", "email", "ann@example.com", 2, "shop_customer"),
        ("customer_id", "c-bob", "customer_id", "c-bob", 3, "observed"),
    ]
    merged = _people(_edges(*observed))
    assert merged[("customer_id", "c-bob")] == ("user_id", "ann")

    split = [
        *observed,
        ("email", "ann@example.com", "customer_id", "c-bob", 10, "never_link"),
    ]
    people = _people(_edges(*split))
    assert people[("customer_id", "c-ann")] == ("user_id", "ann"), "the anchor's side keeps it"
    assert people[("customer_id", "c-bob")] == ("customer_id", "c-bob"), "a new, stable person"
    assert _refused(_edges(*split)) == {
        frozenset({("customer_id", "c-bob"), ("email", "ann@example.com")}): (
            "override: never_link"
        )
    }


def test_never_link_holds_through_any_path() -> None:
    # Two paths join a and b; the override keeps them apart whichever comes first.
    edges = _edges(
        ("email", "a@example.com", "anonymous_id", "x", 0, "identify_email"),
        ("anonymous_id", "x", "email", "b@example.com", 1, "identify_email"),
        ("email", "a@example.com", "customer_id", "c", 2, "shop_customer"),
        ("customer_id", "c", "email", "b@example.com", 3, "shop_customer"),
        ("email", "a@example.com", "email", "b@example.com", 4, "never_link"),
    )
    people = _people(edges)
    assert people[("email", "a@example.com")] != people[("email", "b@example.com")]


def test_a_link_override_merges_two_accounts_and_limits_still_hold_after() -> None:
    edges = _edges(
        ("user_id", "old-account", "email", "ann@example.com", 0, "identify_email"),
        ("user_id", "new-account", "email", "ann@new.example", 1, "identify_email"),
        ("user_id", "old-account", "user_id", "new-account", 2, "override_link"),
        # A third account on a device she used: still one user id too many.
        ("anonymous_id", "d", "user_id", "new-account", 3, "identify"),
        ("anonymous_id", "d", "user_id", "stranger", 4, "identify"),
    )
    people = _people(edges)
    ann = people[("user_id", "old-account")]
    assert people[("user_id", "new-account")] == ann
    assert people[("email", "ann@new.example")] == ann
    assert people[("anonymous_id", "d")] == ann
    assert people[("user_id", "stranger")] == ("user_id", "stranger")


def test_resolution_does_not_depend_on_the_order_of_the_links() -> None:
    links = [("anonymous_id", "kiosk", "user_id", f"u{i}", i, "event_ids") for i in range(30)]
    links += [
        ("anonymous_id", "family", "user_id", "mum", 0, "identify"),
        ("anonymous_id", "family", "user_id", "son", 5, "identify"),
        ("email", "a@example.com", "customer_id", "c", 2, "never_link"),
        ("email", "a@example.com", "customer_id", "c", 1, "shop_customer"),
    ]
    edges = _edges(*links)
    expected = resolve(edges, PROJECT_RULES)
    shuffled = resolve(edges.sample(fraction=1.0, shuffle=True, seed=3), PROJECT_RULES)
    assert shuffled.identifiers.sort(pl.all()).equals(expected.identifiers.sort(pl.all()))
    assert shuffled.refused.sort(pl.all()).equals(expected.refused.sort(pl.all()))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"limits": {"user_id": 2}}, "identity.limits.user_id must be 1"),
        ({"limits": {"user_id": 1, "email": 0}}, "identity.limits.email must be a whole number"),
        ({"blocked_patterns": ["(unclosed"]}, "identity.blocked_patterns: '(unclosed' is invalid"),
        ({"max_user_ids_per_identifier": 0}, "identity.max_user_ids_per_identifier must be"),
    ],
)
def test_unusable_rules_fail_with_the_setting_named(settings: dict, message: str) -> None:
    with pytest.raises(RulesError, match=message.replace("(", r"\(")):
        IdentityRules.from_settings(settings)
