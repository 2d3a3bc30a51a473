from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import orjson
import pytest

from inboxgraph.generate.writer import GenerateOptions, generate_landing
from tests.conftest import END, generate


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _web_messages(landing: Path) -> list[dict]:
    messages = []
    for path in sorted((landing / "web_events").rglob("*.jsonl.gz")):
        for line in gzip.decompress(path.read_bytes()).splitlines():
            try:
                messages.append(orjson.loads(line) | {"_folder": path.parent.name})
            except orjson.JSONDecodeError:
                continue
    return messages


def test_same_seed_gives_byte_identical_landing_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", people=200, days=10, seed=11)
    generate(tmp_path / "b", people=200, days=10, seed=11)
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert first.keys() == second.keys()
    assert len(first) >= 15 and "shop.db" in first
    differing = [name for name in first if first[name] != second[name]]
    assert differing == []


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    generate(tmp_path / "a", people=100, days=5, seed=1)
    generate(tmp_path / "b", people=100, days=5, seed=2)
    assert (
        _files(tmp_path / "a")["enrichment/firmographics.csv"]
        != _files(tmp_path / "b")["enrichment/firmographics.csv"]
    )


def test_generating_into_a_used_landing_zone_is_refused(tmp_path: Path) -> None:
    generate(tmp_path / "a", people=10, days=2)
    try:
        generate(tmp_path / "a", people=10, days=2)
    except FileExistsError as exc:
        assert "not empty" in str(exc)
    else:
        raise AssertionError("a second generate into the same folder must fail")


def test_people_overlap_across_sources_with_messy_emails(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(landing, people=400, days=30)
    messages = _web_messages(landing)
    identify_emails = {
        m["traits"]["email"]
        for m in messages
        if m.get("type") == "identify" and "email" in m.get("traits", {})
    }
    contacts = [
        r["properties"]["email"]
        for page in sorted((landing / "hubspot" / "contacts").glob("*.json"))
        for r in orjson.loads(page.read_bytes())["results"]
    ]
    with sqlite3.connect(landing / "shop.db") as db:
        customers = [row[0] for row in db.execute("select email from customers")]
    normalize = str.lower
    web = {normalize(e.strip()) for e in identify_emails}
    crm = {normalize(e.strip()) for e in contacts}
    shop = {normalize(e.strip()) for e in customers}
    assert len(web & crm) > 20, "identified visitors must also be CRM contacts"
    assert len(web & shop) > 10, "buyers must be both identified visitors and shop customers"
    assert any(e != e.strip() for e in contacts + customers), "whitespace variants expected"
    assert any(e != e.lower() for e in contacts + customers), "case variants expected"
    assert crm - web, "some people are only in the CRM"
    anonymous_only = {m.get("anonymousId") for m in messages if "userId" not in m} - {
        m.get("anonymousId") for m in messages if "userId" in m
    }
    assert anonymous_only, "some visitors never identify"


def test_funnels_orders_and_late_events_look_real(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(landing, people=400, days=30)
    messages = _web_messages(landing)
    events = [m.get("event") for m in messages if m.get("type") == "track"]
    viewed, added = events.count("Product Viewed"), events.count("Product Added")
    started, completed = events.count("Checkout Started"), events.count("Order Completed")
    assert viewed > added > started > completed > 0
    assert completed / added < 0.5, "most carts are abandoned"
    web_orders = {
        m["properties"]["order_id"] for m in messages if m.get("event") == "Order Completed"
    }
    with sqlite3.connect(landing / "shop.db") as db:
        shop_orders = {row[0] for row in db.execute("select order_id from orders")}
    assert web_orders <= shop_orders
    completed_event = next(m for m in messages if m.get("event") == "Order Completed")
    product = completed_event["properties"]["products"][0]
    assert {"product_id", "sku", "name", "price", "quantity", "category"} <= product.keys()
    late = [
        m
        for m in messages
        if isinstance(m.get("timestamp"), str)
        and m["timestamp"][:10] < m["_folder"]
        and m["timestamp"][:4] == "2026"
    ]
    assert late, "some events are received days after they happened"
    esp_events = [
        orjson.loads(line)["event"]
        for path in (landing / "esp_events").rglob("*.jsonl")
        for line in path.read_bytes().splitlines()
        if line.endswith(b"}") and b'"event"' in line
    ]
    assert {"delivered", "open", "click", "bounce"} <= set(esp_events)


def test_about_half_a_percent_of_records_are_bad(tmp_path: Path) -> None:
    report = generate(tmp_path / "landing", people=1000, days=30)
    web_bad = sum(report.bad["web_events"].values())
    assert 0.002 < web_bad / report.records["web_events"] < 0.01
    assert set(report.bad["web_events"]) >= {
        "invalid_json",
        "missing_message_id",
        "missing_identity",
        "wrong_type",
        "impossible_timestamp",
    }
    assert report.duplicates["web_events_same_partition"] > 0


def test_the_shop_tracks_its_sessions_with_each_web_analytics_tool_it_uses(
    tmp_path: Path,
) -> None:
    report = generate(tmp_path / "all", people=300, days=10)
    assert min(report.records[s] for s in ("web_events", "ga4_events", "mixpanel_events")) > 0
    assert set(report.bad["ga4_events"]) <= {
        "invalid_json",
        "missing_identity",
        "wrong_type",
        "bad_event_params",
        "impossible_timestamp",
    }
    ga4 = [
        orjson.loads(line)
        for path in (tmp_path / "all" / "ga4").rglob("*.jsonl.gz")
        for line in gzip.decompress(path.read_bytes()).splitlines()
        if line.endswith(b"}")
    ]
    purchases = [row for row in ga4 if row.get("event_name") == "purchase"]
    assert purchases and all(row["ecommerce"]["transaction_id"] for row in purchases)
    assert {"page_view", "view_item", "add_to_cart"} <= {row.get("event_name") for row in ga4}
    mixpanel = [
        orjson.loads(line)
        for path in (tmp_path / "all" / "mixpanel").rglob("*.jsonl.gz")
        for line in gzip.decompress(path.read_bytes()).splitlines()
        if line.endswith(b"}")
    ]
    assert {"$mp_web_page_view", "Product Viewed"} <= {line["event"] for line in mixpanel}
    # A shop on GA4 alone: no Segment or Mixpanel files, sign-ins as GA4 login events.
    options = GenerateOptions(people=200, days=10, seed=7, end=END, web_tools=("ga4",))
    only = generate_landing(tmp_path / "ga4-only", options)
    assert only.records["web_events"] == only.records["mixpanel_events"] == 0
    assert not (tmp_path / "ga4-only" / "web_events").exists()
    logins = [
        orjson.loads(line)
        for path in (tmp_path / "ga4-only" / "ga4").rglob("*.jsonl.gz")
        for line in gzip.decompress(path.read_bytes()).splitlines()
        if b'"login"' in line and line.endswith(b"}")
    ]
    assert logins and all(row["user_id"] and row["user_pseudo_id"] for row in logins)
    with pytest.raises(ValueError, match="web tools"):
        GenerateOptions(web_tools=("matomo",))
