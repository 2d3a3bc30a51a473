"""The demo shop's web analytics tools: each session is tracked by one of Segment, GA4 and
Mixpanel, written in that vendor's export format (GA4's BigQuery export rows, Mixpanel's Raw
Event Export lines), with the vendor's own kinds of bad records.

Identity calls (identify, alias) go through Segment when the shop uses it, as a CDP-first site
sends them; without Segment, a sign-in is GA4's ``login`` event or a Mixpanel event carrying the
address (``$email``). Web orders tracked by GA4 or Mixpanel are also sent to Segment server-side
half of the time, so the demo shows one order seen by two tools counted once.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from inboxgraph.generate.footprint import hash_hex, truncated

WEB_TOOLS = ("segment", "ga4", "mixpanel")
# How a shop's sessions split between the tools it uses.
TOOL_WEIGHTS = {"segment": 0.5, "ga4": 0.3, "mixpanel": 0.2}
# The lake table each tool's events land in.
TOOL_SOURCE = {"segment": "web_events", "ga4": "ga4_events", "mixpanel": "mixpanel_events"}
P_ORDER_TO_SEGMENT_TOO = 0.5

GA4_EVENT_NAMES = {
    "Product Viewed": "view_item",
    "Product Added": "add_to_cart",
    "Checkout Started": "begin_checkout",
    "Order Completed": "purchase",
}
MIXPANEL_EVENT_NAMES = {
    "Product Viewed": "Product Viewed",
    "Product Added": "Add To Cart",
    "Checkout Started": "Checkout Started",
    "Order Completed": "Purchase",
}
GA4_BAD_KINDS = (
    "invalid_json",
    "missing_identity",
    "wrong_type",
    "bad_event_params",
    "impossible_timestamp",
)
MIXPANEL_BAD_KINDS = (
    "invalid_json",
    "missing_insert_id",
    "missing_identity",
    "wrong_type",
    "impossible_timestamp",
)


def session_tool(seed: int, device: str, started: datetime, tools: tuple[str, ...]) -> str:
    """Which tool tracks the session a device starts at ``started`` (by hash, not the person's
    random stream, so adding a tool changes no other draw)."""
    if len(tools) == 1:
        return tools[0]
    draw = int(hash_hex(seed, device, started.isoformat(), "tool", size=4), 16) / 2**32
    total = sum(TOOL_WEIGHTS[t] for t in tools)
    for tool in tools:
        draw -= TOOL_WEIGHTS[tool] / total
        if draw < 0:
            return tool
    return tools[-1]


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _products(properties: dict) -> list[dict]:
    lines = properties.get("products") or ([properties] if "product_id" in properties else [])
    return [line for line in lines if "product_id" in line]


def _param(key: str, value: object) -> dict:
    if isinstance(value, bool) or value is None:
        value = str(value).lower()
    if isinstance(value, int):
        return {"key": key, "value": {"int_value": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"double_value": value}}
    return {"key": key, "value": {"string_value": str(value)}}


def to_ga4(message: dict, rng: random.Random) -> dict | None:
    """A Segment message as the GA4 export row of the same event; None without a counterpart."""
    kind = message["type"]
    properties = message.get("properties", {})
    at = _parse(message["timestamp"])
    params: dict[str, object] = {
        "ga_session_id": int(at.timestamp()) // 1800 * 1800,
        "engagement_time_msec": rng.randint(50, 60_000),
    }
    if kind == "page":
        name = "page_view"
        params.update(
            page_location=properties.get("url", ""),
            page_title=properties.get("title", message.get("name", "")),
            page_referrer=properties.get("referrer", ""),
        )
    elif kind == "identify":
        name, params["method"] = "login", "email"
    elif kind == "track" and message.get("event") in GA4_EVENT_NAMES:
        name = GA4_EVENT_NAMES[message["event"]]
        params.update(currency="USD", value=float(properties.get("revenue") or 0.0))
    else:
        return None
    row: dict = {
        "event_date": at.strftime("%Y%m%d"),
        # INT64 columns are strings in BigQuery's JSON export.
        "event_timestamp": str(int(at.timestamp() * 1_000_000)),
        "event_name": name,
        "event_params": [_param(k, v) for k, v in params.items()],
        "event_bundle_sequence_id": str(rng.randint(1, 10**9)),
        "user_id": message.get("userId"),
        "user_pseudo_id": message.get("anonymousId"),
        "user_properties": [],
        "device": {
            "category": "desktop",
            "operating_system": "Web",
            "web_info": {"browser": "Chrome", "hostname": "shop.example.com"},
        },
        "geo": {"country": "", "city": ""},
        "traffic_source": {"name": "(direct)", "medium": "(none)", "source": "(direct)"},
        "stream_id": "2468013579",
        "platform": "WEB",
    }
    lines = _products(properties)
    if lines:
        row["items"] = [
            {
                "item_id": line["product_id"],
                "item_name": line.get("name"),
                "item_category": line.get("category"),
                "price": line.get("price"),
                "quantity": line.get("quantity", 1),
            }
            for line in lines
        ]
    if name == "purchase":
        row["ecommerce"] = {
            "transaction_id": properties.get("order_id"),
            "purchase_revenue": properties.get("revenue"),
            "total_item_quantity": sum(line.get("quantity", 1) for line in lines),
            "unique_items": len(lines),
        }
    return row


def to_mixpanel(message: dict, rng: random.Random) -> dict | None:
    """A Segment message as the Mixpanel export line of the same event; None without one."""
    kind = message["type"]
    properties = message.get("properties", {})
    at = _parse(message["timestamp"])
    device, user = message.get("anonymousId"), message.get("userId")
    props: dict = {
        "time": int(at.timestamp()),
        "distinct_id": user or f"$device:{device}",
        "$insert_id": hash_hex(rng.getrandbits(64), size=12),
        "mp_processing_time_ms": int(at.timestamp() * 1000) + rng.randint(100, 5000),
        "mp_lib": "web",
        "$browser": "Chrome",
        "$os": "Mac OS X",
    }
    if device is not None:
        props["$device_id"] = device
    if user is not None:
        props["$user_id"] = user
    if kind == "page":
        event = "$mp_web_page_view"
        props["$current_url"] = properties.get("url", "")
        props["current_page_title"] = properties.get("title", message.get("name", ""))
    elif kind == "identify":
        event = "Signed In"
        email = message.get("traits", {}).get("email")
        if email:
            props["$email"] = email
    elif kind == "track" and message.get("event") in MIXPANEL_EVENT_NAMES:
        event = MIXPANEL_EVENT_NAMES[message["event"]]
        lines = _products(properties)
        if lines:
            props.update(
                product_id=lines[0]["product_id"],
                category=lines[0].get("category"),
                price=lines[0].get("price"),
            )
        for key in ("order_id", "revenue", "currency"):
            if key in properties:
                props[key] = properties[key]
    else:
        return None
    return {"event": event, "properties": props}


def corrupt_ga4(row: dict, rng: random.Random) -> tuple[str, dict | str]:
    """One of GA4's bad records made from ``row``: (its quarantine reason, the record)."""
    kind = rng.choice(GA4_BAD_KINDS)
    bad = dict(row)
    if kind == "invalid_json":
        return kind, truncated(bad)
    if kind == "missing_identity":
        bad["user_pseudo_id"], bad["user_id"] = None, None
    elif kind == "wrong_type":
        bad["event_timestamp"] = rng.choice(("yesterday", "1.7e15x"))
    elif kind == "bad_event_params":
        bad["event_params"] = {p["key"]: p["value"] for p in row["event_params"]}
    else:
        bad["event_timestamp"] = rng.choice(("946684799000000", "4102444800000000"))
    return kind, bad


def corrupt_mixpanel(line: dict, rng: random.Random) -> tuple[str, dict | str]:
    """One of Mixpanel's bad records made from ``line``: (its quarantine reason, the record)."""
    kind = rng.choice(MIXPANEL_BAD_KINDS)
    properties = dict(line["properties"])
    if kind == "invalid_json":
        return kind, truncated(line)
    if kind == "missing_insert_id":
        properties.pop("$insert_id")
    elif kind == "missing_identity":
        for key in ("distinct_id", "$device_id", "$user_id"):
            properties.pop(key, None)
    elif kind == "wrong_type":
        properties["time"] = timedelta(seconds=properties["time"]).__str__()
    else:
        properties["time"] = rng.choice((946684799, 4102444800))
    return kind, {"event": line["event"], "properties": properties}
