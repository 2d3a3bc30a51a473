"""An incremental run recomputes only the people whose web activity can have changed, and
still equals a full refresh: new events, a merge of two people, an as-of that moved past an
event, a changed product catalog."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from inboxgraph.resources.lake import LakeResource
from inboxgraph.settings import Paths
from inboxgraph.stream import ensure_stream_table
from tests.assets.lake_helpers import materialize_batches, materialize_events
from tests.warehouse.scenario import Landing, query, run_dbt
from tests.warehouse.test_incremental_parse import _write_lines

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
    _write_lines(paths, "web_events", day, f"late-{len(landing.web)}.jsonl", landing.web)
    landing.web = []


def _build(paths: Paths, as_of: datetime, *args: str) -> None:
    materialize_events(paths)
    materialize_batches()
    ensure_stream_table(LakeResource(url=paths.lake_url))
    run_dbt(
        paths,
        "run",
        "--select",
        "+int_person__web_activity_aggregated",
        *args,
        env={"INBOXGRAPH_DBT_AS_OF": as_of.strftime("%Y-%m-%d %H:%M:%S")},
    )


def _activity(paths: Paths) -> list[tuple]:
    return query(paths, f"select {COLUMNS} from {ACTIVITY} order by person_id")


def _person(paths: Paths, identifier_type: str, value: str) -> str:
    return query(
        paths,
        "select person_id from intermediate.int_identity__persons_assigned "
        "where identifier_type = ? and identifier_value = ?",
        identifier_type,
        value,
    )[0][0]


def _row(paths: Paths, person_id: str) -> dict:
    rows = query(paths, f"select {COLUMNS} from {ACTIVITY} where person_id = ?", person_id)
    assert len(rows) <= 1
    return dict(zip(NAMES, rows[0], strict=True)) if rows else {}


def test_incremental_web_activity_equals_a_full_refresh(platform_home: Paths) -> None:
    paths = platform_home
    landing = Landing()
    # Reader: sessions on separate days; Buyer: logged in; Browser: anonymous, merged into Buyer
    # later; Early: a page view after the first as-of, received on an old day; Idle: nothing new.
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
    # A late arrival: stamped 11-01, received 11-05. The window of the next run starts the day
    # before the newest received day seen (11-04), after Early's 11-02 page view.
    landing.page(datetime(2026, 11, 1, 15), anonymous_id="anon-reader")
    _received_on(paths, "2026-11-05", landing)
    _build(paths, FIRST_AS_OF)

    browser = _person(paths, "anonymous_id", "anon-browser")
    buyer = _person(paths, "user_id", "user-buyer")
    assert browser != buyer
    assert _row(paths, buyer)["product_views"] == 1
    early = _person(paths, "anonymous_id", "anon-early")
    assert _row(paths, early)["page_views"] == 0, "the 18:00 page view is after the as-of"
    assert _row(paths, early)["top_categories"] == ["Apparel"], "from the catalog"
    idle = _row(paths, _person(paths, "anonymous_id", "anon-idle"))

    # A new day: the reader comes back and the browser logs in as the buyer (the two merge);
    # the as-of moves past Early's page view.
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
    assert _row(paths, early)["page_views"] == 1, "the as-of moved past the page view"
    assert _row(paths, _person(paths, "anonymous_id", "anon-idle")) == idle

    # The shop renames the category that Early's view takes from the catalog.
    with sqlite3.connect(Path(paths.landing_url) / "shop.db") as db:
        db.execute("update products set category = 'Linen' where product_id = 'P0001'")
    _build(paths, SECOND_AS_OF)
    assert _row(paths, early)["top_categories"] == ["Linen"], "the catalog's new category"
    incremental = _activity(paths)

    _build(paths, SECOND_AS_OF, "--full-refresh")
    assert _activity(paths) == incremental
