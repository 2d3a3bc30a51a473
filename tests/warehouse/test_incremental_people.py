"""Incremental runs redo only what can have changed and still equal a full refresh: web
activity for the people with new events, a merge, an as-of that moved past an event or a changed
product catalog; identity resolution for the components whose links changed; identity links of
the identifiers in new events, and of the CRM and the shop."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import duckdb

from inboxgraph.settings import Paths
from tests.warehouse.scenario import Landing, identifier_row, land, query, run_dbt, write_lines

ACTIVITY = "intermediate.int_person__web_activity_aggregated"
NAMES = (
    "person_id",
    "page_views",
    "product_views",
    "first_seen_at",
    "last_seen_at",
    "last_cart_event_at",
    "last_web_order_at",
    "session_count",
    "top_categories",
    "recently_viewed_products",
)
COLUMNS = ", ".join(NAMES)
FIRST_AS_OF = datetime(2026, 11, 2, 12)
SECOND_AS_OF = datetime(2026, 11, 7)


def _received_on(paths: Paths, day: str, landing: Landing) -> None:
    """Land ``landing``'s web messages in the folder of ``day``, whatever their timestamps."""
    write_lines(paths, "web_events", day, f"late-{len(landing.web)}.jsonl", landing.web)
    landing.web = []


# Models and seeds (the identity overrides) without their tests: `dbt run` builds no seed.
BUILD = ("build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test")


def _land_and_run(paths: Paths, model: str, *args: str, **variables: str) -> None:
    """Land what is new, then build ``model`` and everything it is built from, the run's window
    naming the days landed."""
    window = land(paths, **variables)
    run_dbt(paths, *BUILD, "--select", f"+{model}", *args, *window)


def _build(paths: Paths, as_of: datetime, *args: str) -> None:
    as_of_var = as_of.strftime("%Y-%m-%d %H:%M:%S")
    _land_and_run(paths, "int_person__web_activity_aggregated", *args, as_of=as_of_var)


def _activity(paths: Paths) -> list[tuple]:
    return query(paths, f"select {COLUMNS} from {ACTIVITY} order by person_id")


def _person(paths: Paths, identifier_type: str, value: str) -> str:
    table = "intermediate.int_identity__persons_assigned"
    return identifier_row(paths, table, "person_id", identifier_type, value)[0]


def _row(paths: Paths, person_id: str) -> dict:
    rows = query(paths, f"select {COLUMNS} from {ACTIVITY} where person_id = ?", person_id)
    assert len(rows) <= 1
    return dict(zip(NAMES, rows[0], strict=True)) if rows else {}


def test_incremental_web_activity_equals_a_full_refresh(platform_home: Paths) -> None:
    paths = platform_home
    landing = Landing()
    # Reader: sessions on separate days; Buyer: logged in; Browser: anonymous, merged into Buyer
    # later; Early: a page view after the first as-of (profiles count it all the same), received
    # on an old day; Idle: nothing new.
    landing.page(datetime(2026, 11, 1, 9), anonymous_id="anon-reader")
    landing.page(datetime(2026, 11, 2, 9), anonymous_id="anon-reader")
    landing.track("Product Viewed", datetime(2026, 11, 1, 10), user_id="user-buyer")
    landing.track("Product Viewed", datetime(2026, 11, 2, 10), anonymous_id="anon-browser")
    landing.track(
        "Product Viewed", datetime(2026, 11, 2, 8), anonymous_id="anon-early", category=None
    )
    landing.page(datetime(2026, 11, 2, 18), anonymous_id="anon-early")
    landing.page(datetime(2026, 11, 1, 11), anonymous_id="anon-idle")
    landing.esp_event("reader@example.com", "delivered", datetime(2026, 11, 1, 9))
    landing.write(Path(paths.landing_url))
    # A late arrival: stamped 11-01, received 11-05.
    landing.page(datetime(2026, 11, 1, 15), anonymous_id="anon-reader")
    _received_on(paths, "2026-11-05", landing)
    _build(paths, FIRST_AS_OF)

    browser = _person(paths, "anonymous_id", "anon-browser")
    buyer = _person(paths, "user_id", "user-buyer")
    assert browser != buyer
    assert _row(paths, buyer)["product_views"] == 1
    early = _person(paths, "anonymous_id", "anon-early")
    assert _row(paths, early)["page_views"] == 1, "profiles do not depend on the as-of"
    assert _row(paths, early)["top_categories"] == ["Apparel"], "from the catalog"
    idle = _row(paths, _person(paths, "anonymous_id", "anon-idle"))

    # A new day: the reader comes back and the browser logs in as the buyer (the two merge).
    landing.page(datetime(2026, 11, 6, 9), anonymous_id="anon-reader")
    landing.identify(datetime(2026, 11, 6, 10), anonymous_id="anon-browser", user_id="user-buyer")
    landing.write(Path(paths.landing_url))
    _build(paths, SECOND_AS_OF)

    merged = _person(paths, "user_id", "user-buyer")
    assert _person(paths, "anonymous_id", "anon-browser") == merged
    assert _row(paths, merged)["product_views"] == 2, "the merged person has both views"
    gone = ({browser, buyer} - {merged}).pop()
    assert _row(paths, gone) == {}, "the person merged away has no row"
    assert _row(paths, _person(paths, "anonymous_id", "anon-reader"))["session_count"] == 4
    assert _row(paths, early)["page_views"] == 1
    assert _row(paths, _person(paths, "anonymous_id", "anon-idle")) == idle

    # The shop renames the category that Early's view takes from the catalog.
    with sqlite3.connect(Path(paths.landing_url) / "shop.db") as db:
        db.execute("update products set category = 'Linen' where product_id = 'P0001'")
    _build(paths, SECOND_AS_OF)
    assert _row(paths, early)["top_categories"] == ["Linen"], "the catalog's new category"
    incremental = _activity(paths)

    _build(paths, SECOND_AS_OF, "--full-refresh")
    assert _activity(paths) == incremental


def _components(paths: Paths) -> list[tuple]:
    return query(
        paths,
        "select identifier_type, identifier_value, anchor_type, anchor_value, graph_component, "
        "links_fingerprint, identifier_id, person_id "
        "from intermediate.int_identity__components_resolved order by all",
    )


def _anchor(paths: Paths, identifier_type: str, value: str) -> tuple | None:
    table = "intermediate.int_identity__components_resolved"
    return identifier_row(paths, table, "anchor_type, anchor_value", identifier_type, value)


def _resolve(paths: Paths, *args: str) -> None:
    """Land what is new, then build the graph and the identity marts."""
    window = land(paths)
    run_dbt(paths, *BUILD, "--select", "+identity_links", "+identity_map", *args, *window)


def _identity_marts(paths: Paths) -> tuple[list[tuple], list[tuple]]:
    return (
        query(paths, "select * exclude (written_at) from marts.identity_links order by all"),
        query(paths, "select * from marts.identity_map order by all"),
    )


def test_incremental_identity_resolution_equals_a_full_refresh(platform_home: Paths) -> None:
    paths = platform_home
    landing = Landing()
    landing.identify(datetime(2026, 11, 1, 9), anonymous_id="anon-a", user_id="user-a")
    landing.page(datetime(2026, 11, 1, 10), anonymous_id="anon-b")
    # A shared device: anon-s logs in as two users; it stays with the first.
    landing.identify(datetime(2026, 11, 1, 11), anonymous_id="anon-s", user_id="user-s1")
    landing.identify(datetime(2026, 11, 1, 12), anonymous_id="anon-s", user_id="user-s2")
    landing.page(datetime(2026, 11, 1, 13), anonymous_id="anon-idle")
    # A CRM contact whose address a visitor typed in: the CRM id names the person, two links
    # away from the visitor's device.
    landing.contact("hs-p", "p@example.com", False, datetime(2026, 11, 1, 8))
    landing.identify(datetime(2026, 11, 1, 14), "anon-p", None, email="p@example.com")
    landing.esp_event("reader@example.com", "delivered", datetime(2026, 11, 1, 9))
    landing.write(Path(paths.landing_url))
    _resolve(paths)
    assert _anchor(paths, "anonymous_id", "anon-p") == ("hubspot_id", "hs-p")
    assert _anchor(paths, "anonymous_id", "anon-s") == ("user_id", "user-s1")
    assert _anchor(paths, "anonymous_id", "anon-b") == ("anonymous_id", "anon-b")
    idle = [row for row in _components(paths) if row[1] == "anon-idle"]

    # The next day: anon-b logs in as user-a (two people merge); user-s2 gets a device of its
    # own; a new visitor; anon-p types a second address; and a late line received today shows
    # anon-s with user-s2 earlier than with user-s1, so the shared device now belongs to user-s2.
    landing.identify(datetime(2026, 11, 2, 9), anonymous_id="anon-b", user_id="user-a")
    landing.identify(datetime(2026, 11, 2, 10), anonymous_id="anon-s2", user_id="user-s2")
    landing.page(datetime(2026, 11, 2, 11), anonymous_id="anon-new")
    landing.identify(datetime(2026, 11, 2, 12), "anon-p", None, email="p2@example.com")
    landing.write(Path(paths.landing_url))
    early = Landing()
    early.identify(datetime(2026, 11, 1, 10), anonymous_id="anon-s", user_id="user-s2")
    _received_on(paths, "2026-11-02", early)
    # The graph is built in one run (as materializing it alone in the UI does), the marts in the
    # next: they take in what changed since they were last built, not only in their own run.
    _land_and_run(paths, "int_identity__components_resolved")
    _resolve(paths)
    incremental = _components(paths)

    assert _anchor(paths, "anonymous_id", "anon-b") == ("user_id", "user-a")
    assert _anchor(paths, "anonymous_id", "anon-s2") == ("user_id", "user-s2")
    assert _anchor(paths, "anonymous_id", "anon-s") == ("user_id", "user-s2")
    assert _anchor(paths, "anonymous_id", "anon-new") == ("anonymous_id", "anon-new")
    assert _anchor(paths, "email", "p2@example.com") == ("hubspot_id", "hs-p")
    assert _anchor(paths, "anonymous_id", "anon-p") == ("hubspot_id", "hs-p")
    assert [row for row in incremental if row[1] == "anon-idle"] == idle
    assert all(row[2] is not None for row in incremental), "no empty rows are left"

    marts = _identity_marts(paths)

    _resolve(paths, "--full-refresh")
    assert _components(paths) == incremental
    # The identity marts, rebuilt only where an identifier or a link changed.
    assert _identity_marts(paths) == marts


def test_an_empty_identity_links_mart_takes_in_every_link(platform_home: Paths) -> None:
    paths = platform_home
    landing = Landing()
    landing.identify(datetime(2026, 11, 1, 9), anonymous_id="anon-a", user_id="user-a")
    landing.esp_event("reader@example.com", "delivered", datetime(2026, 11, 1, 9))
    landing.write(Path(paths.landing_url))
    _resolve(paths)
    built = _identity_marts(paths)
    assert built[0], "the first build wrote links"
    # A mart that holds no row has no newest write to count from: nothing new lands, and the
    # next run writes every link again.
    with duckdb.connect(paths.warehouse) as con:
        con.execute("delete from marts.identity_links")
    _resolve(paths)
    assert _identity_marts(paths) == built


def _small_graph(paths: Paths) -> list[tuple]:
    """Two people and a reader, resolved; the graph's rows."""
    landing = Landing()
    landing.identify(datetime(2026, 11, 1, 9), anonymous_id="anon-a", user_id="user-a")
    landing.page(datetime(2026, 11, 1, 10), anonymous_id="anon-b")
    landing.esp_event("reader@example.com", "delivered", datetime(2026, 11, 1, 9))
    landing.write(Path(paths.landing_url))
    _land_and_run(paths, "int_identity__components_resolved")
    return _components(paths)


def test_a_graph_built_without_person_ids_is_resolved_again_whole(platform_home: Paths) -> None:
    paths = platform_home
    built = _small_graph(paths)
    # A table from before the graph carried person ids: nothing new lands, yet every row is
    # written again with them (the persons view reads them).
    with duckdb.connect(paths.warehouse) as con:
        for column in ("person_id", "identifier_id"):
            con.execute(f"alter table intermediate.int_identity__components_resolved drop {column}")
    _land_and_run(paths, "int_identity__persons_assigned")
    assert _components(paths) == built
    assert _person(paths, "anonymous_id", "anon-a") == _person(paths, "user_id", "user-a")
    assert _person(paths, "anonymous_id", "anon-b") != _person(paths, "user_id", "user-a")


def test_a_graph_held_with_other_fingerprints_is_resolved_again_whole(
    platform_home: Paths,
) -> None:
    paths = platform_home
    built = _small_graph(paths)
    # Fingerprints of another form (as a graph built by an earlier version holds): nothing new
    # lands, yet every identifier differs, so every one is resolved again, to the same person.
    table = "intermediate.int_identity__components_resolved"
    with duckdb.connect(paths.warehouse) as con:
        con.execute(f"update {table} set links_fingerprint = xor(links_fingerprint, 1)")
        before = con.execute(f"select max(resolved_at) from {table}").fetchone()[0]
    _land_and_run(paths, "int_identity__components_resolved")
    assert _components(paths) == built
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        stale = con.execute(f"select count(*) from {table} where resolved_at <= ?", [before])
        assert stale.fetchone()[0] == 0, "every row was written again"
        rewritten = con.execute(f"select max(resolved_at) from {table}").fetchone()[0]
    # The fingerprints written are those the next run computes: it resolves nothing again.
    _land_and_run(paths, "int_identity__components_resolved")
    assert _components(paths) == built
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        assert con.execute(f"select max(resolved_at) from {table}").fetchone()[0] == rewritten


LINKS = "intermediate.int_identity__links_collected"


def _links(paths: Paths) -> list[tuple]:
    # built_at is when a run wrote the row: a full refresh writes every row again.
    return query(paths, f"select * exclude (built_at) from {LINKS} order by link_id")


def _link(paths: Paths, left: tuple[str, str], right: tuple[str, str]) -> dict | None:
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        frame = con.execute(
            f"select * exclude (built_at) from {LINKS} where left_type = ? and left_value = ? "
            "and right_type = ? and right_value = ?",
            [*left, *right],
        ).pl()
    assert frame.height <= 1
    return frame.to_dicts()[0] if frame.height else None


def test_incremental_links_equal_a_full_refresh(platform_home: Paths) -> None:
    paths = platform_home
    landing = Landing()
    landing.identify(datetime(2026, 11, 1, 9), anonymous_id="anon-a", user_id="user-a")
    landing.alias(datetime(2026, 11, 1, 9, 30), "anon-x", "user-a")
    landing.page(datetime(2026, 11, 1, 10), anonymous_id="anon-b")
    landing.identify(datetime(2026, 11, 1, 10, 30), "anon-b", None, email="b@example.com")
    landing.page(datetime(2026, 11, 1, 11), anonymous_id="anon-idle")
    landing.esp_event("reader@example.com", "delivered", datetime(2026, 11, 1, 9))
    landing.contact("hs-c", "c@example.com", False, datetime(2026, 11, 1, 8))
    landing.customer(7, "shopper@example.com")
    landing.order("O-1", 7, 20.0, datetime(2026, 11, 1, 12))
    landing.write(Path(paths.landing_url))
    _land_and_run(paths, "int_identity__links_collected")
    idle = _link(paths, ("anonymous_id", "anon-idle"), ("anonymous_id", "anon-idle"))
    assert idle["observations"] == 1

    # The next day: anon-b comes back and then logs in as user-b, user-a types an address, the
    # reader gets another email and a new reader one; the CRM contact and the shop customer
    # change their addresses; and a line received today shows anon-a with user-a a day earlier.
    landing.page(datetime(2026, 11, 2, 9), anonymous_id="anon-b")
    landing.identify(datetime(2026, 11, 2, 10), anonymous_id="anon-b", user_id="user-b")
    landing.identify(datetime(2026, 11, 2, 11), "anon-a", "user-a", email="a@example.com")
    landing.esp_event("reader@example.com", "open", datetime(2026, 11, 2, 9))
    landing.esp_event("new@example.com", "delivered", datetime(2026, 11, 2, 9))
    landing.contact("hs-c", "c2@example.com", False, datetime(2026, 11, 2, 8))
    landing.write(Path(paths.landing_url))
    with sqlite3.connect(Path(paths.landing_url) / "shop.db") as db:
        db.execute("update customers set email = 'shopper2@example.com' where customer_id = 7")
    early = Landing()
    early.identify(datetime(2026, 10, 31, 9), anonymous_id="anon-a", user_id="user-a")
    _received_on(paths, "2026-11-02", early)
    _land_and_run(paths, "int_identity__links_collected")
    incremental = _links(paths)

    anon_b = _link(paths, ("anonymous_id", "anon-b"), ("anonymous_id", "anon-b"))
    assert anon_b["observations"] == 3, "two page views and the identify without a user id"
    assert _link(paths, ("anonymous_id", "anon-b"), ("user_id", "user-b"))["rule"] == "identify"
    assert _link(paths, ("anonymous_id", "anon-b"), ("email", "b@example.com")) is not None
    a_to_user = _link(paths, ("anonymous_id", "anon-a"), ("user_id", "user-a"))
    assert a_to_user["first_observed_at"] == datetime(2026, 10, 31, 9), "the late line"
    assert a_to_user["observations"] == 3
    assert _link(paths, ("anonymous_id", "anon-x"), ("user_id", "user-a"))["rule"] == "alias"
    assert _link(paths, ("user_id", "user-a"), ("email", "a@example.com")) is not None
    reader = _link(paths, ("email", "reader@example.com"), ("email", "reader@example.com"))
    assert reader["first_observed_at"] == datetime(2026, 11, 1, 9)
    assert _link(paths, ("email", "new@example.com"), ("email", "new@example.com")) is not None
    assert _link(paths, ("hubspot_id", "hs-c"), ("email", "c@example.com")) is None
    assert _link(paths, ("hubspot_id", "hs-c"), ("email", "c2@example.com")) is not None
    assert _link(paths, ("customer_id", "7"), ("email", "shopper@example.com")) is None
    assert _link(paths, ("customer_id", "7"), ("email", "shopper2@example.com")) is not None
    assert _link(paths, ("anonymous_id", "anon-idle"), ("anonymous_id", "anon-idle")) == idle
    assert all(row[1] is not None for row in incremental), "no empty rows are left"
    # The next day's links were merged with their held rows: nothing was counted twice.
    _land_and_run(paths, "int_identity__links_collected", "--full-refresh")
    assert _links(paths) == incremental

    # A late file for a day the links hold (named by Dagster as landed again): the links of its
    # identifiers are counted again from all of their events, not merged.
    late = Landing()
    late.page(datetime(2026, 11, 1, 15), anonymous_id="anon-idle")
    late.page(datetime(2026, 11, 1, 16), anonymous_id="anon-b")
    _received_on(paths, "2026-11-01", late)
    _land_and_run(paths, "int_identity__links_collected")
    incremental = _links(paths)
    idle_now = _link(paths, ("anonymous_id", "anon-idle"), ("anonymous_id", "anon-idle"))
    assert idle_now["observations"] == 2
    assert _link(paths, ("anonymous_id", "anon-b"), ("anonymous_id", "anon-b"))["observations"] == 4

    _land_and_run(paths, "int_identity__links_collected", "--full-refresh")
    assert _links(paths) == incremental
