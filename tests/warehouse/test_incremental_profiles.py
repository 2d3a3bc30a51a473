"""The person-level models and the profiles are rebuilt only for the people whose inputs changed
(macros/changed_people.sql), and still equal a full refresh: after a merge, a late ESP event, an
unsubscribe, a web order claimed by an earlier event of another person, a shop order cancelled
and one added, a CRM update, new enrichment and a new price in the catalog."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from inboxgraph.settings import Paths
from tests.warehouse.scenario import Landing, land, person_of, query, run_dbt, write_lines

BUILD = ("build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test")
DAY = datetime(2026, 11, 1, 9)
NEXT = datetime(2026, 11, 2, 9)
EARLIER = datetime(2026, 10, 30, 9)
PERSON_MODELS = (
    "int_person__demographics_merged",
    "int_person__email_engagement_counted",
    "int_person__email_status_decided",
    "int_person__emails_ranked",
    "int_person__open_carts",
    "int_person__orders_combined",
    "int_person__orders_summarized",
)


def _build(paths: Paths, *args: str) -> None:
    run_dbt(paths, *BUILD, "--select", "+customer_profiles", "+identity_map", *args, *land(paths))


def _outputs(paths: Paths) -> list[list[tuple]]:
    tables = [
        query(paths, f"select * exclude (written_at) from intermediate.{model} order by all")
        for model in PERSON_MODELS
    ]
    profiles = "select * exclude (refreshed_at) from marts.customer_profiles order by all"
    return [*tables, query(paths, profiles)]


def _written(paths: Paths) -> dict[str, set[str]]:
    """Per person-level model, the people its latest build wrote a row for."""
    return {
        model: {
            row[0]
            for row in query(
                paths,
                f"select person_id from intermediate.{model} "
                f"where written_at = (select max(written_at) from intermediate.{model})",
            )
        }
        for model in PERSON_MODELS
    }


def _first_day() -> Landing:
    landing = Landing()
    # Bea buys in the shop and on the web, with a cart still open; her address has enrichment.
    landing.identify(DAY, "anon-bea", "bea", email="bea@example.com", first_name="Bea")
    landing.customer(501, "bea@example.com")
    landing.order("O-1", 501, 40.0, DAY)
    landing.track("Product Added", DAY.replace(hour=10), user_id="bea", product_id="P0001")
    landing.enrichment.append({"email": "bea@example.com", "company": "Acme", "job_title": "CTO"})
    # Rex reads the newsletter; HubSpot knows him.
    landing.contact("hs-rex", "rex@example.com", False, DAY, firstname="Rex")
    landing.esp_event("rex@example.com", "delivered", DAY)
    landing.esp_event("rex@example.com", "open", DAY.replace(hour=10))
    # Vic browses anonymously and leaves a product in the cart.
    landing.page(DAY, anonymous_id="anon-vic")
    landing.track(
        "Product Added", DAY.replace(hour=11), anonymous_id="anon-vic", product_id="P0001"
    )
    # On a day nothing lands for again: Ida got one email (nothing about her changes), Cal left
    # a product in his cart (only its price changes), Wes completed a web order the shop does
    # not know.
    landing.esp_event("ida@example.com", "delivered", EARLIER)
    landing.track("Product Added", EARLIER, anonymous_id="anon-cal", product_id="P0001")
    landing.identify(EARLIER, "anon-wes", "wes", email="wes@example.com")
    landing.track(
        "Order Completed", EARLIER.replace(hour=12), user_id="wes", order_id="W-1", revenue=30
    )
    return landing


def test_people_whose_inputs_changed_are_rebuilt_and_equal_a_full_refresh(
    platform_home: Paths,
) -> None:
    paths = platform_home
    landing = _first_day()
    landing.write(Path(paths.landing_url))
    _build(paths)
    ida = person_of(paths, "email", "ida@example.com")
    vic = person_of(paths, "anonymous_id", "anon-vic")
    wes = person_of(paths, "user_id", "wes")
    assert query(
        paths,
        "select order_count from intermediate.int_person__orders_summarized where person_id = ?",
        wes,
    ) == [(1,)]

    # The next day: Vic logs in as Bea (two people merge, with their carts); Rex unsubscribes,
    # and an open of his from yesterday arrives late; Xan's Order Completed for W-1, earlier
    # than Wes's, is received today (the order is Xan's now, though nothing of Wes's landed);
    # the shop cancels O-1 and takes O-2;
    # HubSpot has Rex's new first name; Rex's address gets enrichment; P0001 costs more.
    landing.identify(NEXT, "anon-vic", "bea")
    landing.esp_event("rex@example.com", "unsubscribe", NEXT)
    landing.esp_event("rex@example.com", "open", DAY.replace(hour=15))
    late = Landing()
    late.identify(EARLIER, "anon-xan", "xan", email="xan@example.com")
    late.track(
        "Order Completed", EARLIER.replace(hour=11), user_id="xan", order_id="W-1", revenue=30
    )
    write_lines(paths, "web_events", "2026-11-02", "late.jsonl", late.web)
    landing.order("O-2", 501, 55.0, NEXT)
    landing.contact("hs-rex", "rex@example.com", False, NEXT, firstname="Rexford")
    landing.enrichment.append({"email": "bea@example.com", "company": "Acme", "job_title": "CTO"})
    landing.enrichment.append({"email": "rex@example.com", "company": "Globex", "job_title": "VP"})
    landing.write(Path(paths.landing_url))
    with sqlite3.connect(Path(paths.landing_url) / "shop.db") as shop:
        shop.execute(
            "update orders set status = 'cancelled', updated_at = ? where order_id = 'O-1'",
            (NEXT.strftime("%Y-%m-%d %H:%M:%S"),),
        )
        shop.execute("update products set price = 30.0 where product_id = 'P0001'")
    _build(paths)

    bea = person_of(paths, "user_id", "bea")
    assert person_of(paths, "anonymous_id", "anon-vic") == bea, "Vic merged into Bea"
    assert vic != bea
    orders = query(
        paths,
        "select order_id, person_id from intermediate.int_person__orders_combined order by all",
    )
    assert orders == [("O-2", bea), ("W-1", person_of(paths, "user_id", "xan"))]
    assert not query(
        paths, "select * from intermediate.int_person__orders_summarized where person_id = ?", wes
    ), "Wes's only order is Xan's now"
    assert query(
        paths,
        "select email_status from intermediate.int_person__email_status_decided "
        "where person_id = ?",
        person_of(paths, "email", "rex@example.com"),
    ) == [("unsubscribed",)]
    # Ida's rows were not written again: only the people whose inputs changed were (here, the
    # people with an event on a day landed again, whose events were parsed again).
    written = _written(paths)
    assert ida not in set().union(*written.values())
    cal = person_of(paths, "anonymous_id", "anon-cal")
    assert written["int_person__open_carts"] == {cal}, "the new price prices every cart again"
    assert query(
        paths, "select cart_value from intermediate.int_person__open_carts where person_id = ?", cal
    ) == [(30.0,)]
    assert vic not in {
        row[0] for row in query(paths, "select person_id from intermediate.int_person__open_carts")
    }, "the merged-away person is gone"

    incremental = _outputs(paths)
    _build(paths, "--full-refresh")
    assert _outputs(paths) == incremental
