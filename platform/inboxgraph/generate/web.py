"""A person's web footprint: Segment calls of their sessions and funnels, with bad records."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from inboxgraph.generate import catalog
from inboxgraph.generate.analytics import (
    P_ORDER_TO_SEGMENT_TOO,
    TOOL_SOURCE,
    corrupt_ga4,
    corrupt_mixpanel,
    session_tool,
    to_ga4,
    to_mixpanel,
)
from inboxgraph.generate.footprint import (
    P_ADD_TO_CART,
    P_BAD,
    P_CHECKOUT,
    P_DUPLICATE,
    P_PURCHASE,
    WEB_BAD_KINDS,
    Footprint,
    iso,
    truncated,
)


class WebSimulation:
    """Web events, mixed into :class:`~inboxgraph.generate.people.PersonSimulator`: each
    session tracked by one of the shop's web analytics tools (``web_tools``)."""

    seed: int
    end_day: object
    web_tools: tuple[str, ...]
    default_tool: str
    tool: str

    def _web(
        self,
        fp: Footprint,
        rng: random.Random,
        kind: str,
        ts: datetime,
        anon: str | None,
        uid: str | None,
        ua: str,
        **fields: object,
    ) -> None:
        message: dict = {
            "type": kind,
            "messageId": self._message_id(rng),
            "timestamp": iso(ts),
            "sentAt": iso(ts + timedelta(milliseconds=rng.randint(5, 900))),
        }
        if anon is not None:
            message["anonymousId"] = anon
        if uid is not None:
            message["userId"] = uid
        message.update(fields)
        message["context"] = {
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "userAgent": ua,
            "ip": f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "locale": "en-US",
        }
        tool = self.tool
        if kind in ("identify", "alias") and "segment" in self.web_tools:
            tool = "segment"
        if tool == "ga4":
            self._land(fp, rng, ts, "ga4", to_ga4(message, rng), corrupt_ga4)
        elif tool == "mixpanel":
            self._land(fp, rng, ts, "mixpanel", to_mixpanel(message, rng), corrupt_mixpanel)
        if tool != "segment":
            # A web order is also tracked server-side through Segment, half the time.
            ordered = message.get("event") == "Order Completed" and "segment" in self.web_tools
            if not (ordered and rng.random() < P_ORDER_TO_SEGMENT_TOO):
                return
        self._land(fp, rng, ts, "segment", message, self._corrupt_web)

    def _land(
        self,
        fp: Footprint,
        rng: random.Random,
        ts: datetime,
        tool: str,
        record: dict | None,
        corrupt: Callable[[dict, random.Random], tuple[str, dict | str]],
    ) -> None:
        """One record of a tool, received soon (or late): a bad one now and then (``corrupt``
        makes it and names its kind), delivered twice rarely."""
        if record is None:
            return
        events = {"segment": fp.web, "ga4": fp.ga4, "mixpanel": fp.mixpanel}[tool]
        source = TOOL_SOURCE[tool]
        received = self._received(rng, ts)
        if rng.random() < P_BAD:
            kind, bad = corrupt(record, rng)
            fp.count_bad(source, kind)
            events.append((received, bad))
            return
        events.append((received, record))
        if rng.random() < P_DUPLICATE:
            same_day = rng.random() < 0.5
            again = received if same_day else min(received + timedelta(days=1), self.end_day)
            events.append((again, record))
            key = f"{source}_{'same' if again == received else 'other'}_partition"
            fp.duplicates[key] = fp.duplicates.get(key, 0) + 1

    @staticmethod
    def _corrupt_web(message: dict, rng: random.Random) -> tuple[str, dict | str]:
        """One of Segment's bad records made from ``message``: (its reason, the record)."""
        has_email = message["type"] == "identify" and "email" in message.get("traits", {})
        kinds = WEB_BAD_KINDS + (("invalid_email",) if has_email else ())
        kind = rng.choice(kinds)
        bad = dict(message)
        if kind == "invalid_json":
            return kind, truncated(bad)
        if kind == "missing_message_id":
            bad.pop("messageId")
        elif kind == "missing_identity":
            bad.pop("anonymousId", None)
            bad.pop("userId", None)
        elif kind == "wrong_type":
            if rng.random() < 0.5:
                bad["timestamp"] = int(datetime.fromisoformat(bad["timestamp"]).timestamp())
            else:
                bad["properties"] = "product_id=P0001"
        elif kind == "impossible_timestamp":
            bad["timestamp"] = rng.choice(
                ("1970-01-01T00:00:00.000Z", "2099-06-01T12:00:00.000Z", "2026-02-30T10:00:00Z")
            )
        elif kind == "invalid_email":
            traits = dict(bad["traits"])
            traits["email"] = traits["email"].strip().replace("@", "@@", 1).replace(".", " ", 1)
            bad["traits"] = traits
        return kind, bad

    def _product_props(self, product: catalog.Product, quantity: int = 1) -> dict:
        return {
            "product_id": product.product_id,
            "sku": product.sku,
            "name": product.name,
            "category": product.category,
            "price": product.price,
            "quantity": quantity,
            "currency": "USD",
        }

    def _session(
        self,
        fp: Footprint,
        rng: random.Random,
        started: datetime,
        anon: str,
        uid: str | None,
        ua: str,
        may_buy: bool,
        index: int = 0,
        person: dict | None = None,
        state: dict | None = None,
    ) -> None:
        def send(kind: str, at: datetime, **fields: object) -> None:
            self._web(fp, rng, kind, at, anon, uid, ua, **fields)

        self.tool = session_tool(self.seed, anon, started, self.web_tools)
        try:
            self._session_events(send, fp, rng, started, may_buy, index, person, state)
        finally:
            self.tool = self.default_tool

    def _session_events(
        self,
        send: Callable[..., None],
        fp: Footprint,
        rng: random.Random,
        started: datetime,
        may_buy: bool,
        index: int,
        person: dict | None,
        state: dict | None,
    ) -> None:

        def page(at: datetime, title: str, path: str, **properties: object) -> None:
            url = f"https://shop.example.com{path}"
            properties = {"path": path, "url": url, "title": title, **properties}
            send("page", at, name=title, properties=properties)

        ts = started
        name, path = rng.choice(catalog.PAGES)
        page(ts, name, path, referrer="")
        viewed = []
        for _ in range(1 + int(rng.expovariate(0.5))):
            ts += timedelta(seconds=rng.randint(10, 240))
            product = rng.choice(self.products)
            viewed.append(product)
            path = f"/products/{product.product_id.lower()}"
            page(ts, product.name, path, category=product.category)
            send("track", ts, event="Product Viewed", properties=self._product_props(product))
        if rng.random() >= P_ADD_TO_CART:
            return
        cart = [rng.choice(viewed) for _ in range(1 + int(rng.random() * 1.5))]
        for product in cart:
            ts += timedelta(seconds=rng.randint(5, 120))
            added = {**self._product_props(product), "cart_id": self._message_id(rng)}
            send("track", ts, event="Product Added", properties=added)
        if rng.random() >= P_CHECKOUT:
            return
        ts += timedelta(seconds=rng.randint(20, 300))
        lines = [self._product_props(p) for p in cart]
        total = round(sum(p.price for p in cart), 2)
        order_id = f"ORD-{index:07d}-{state['orders'] + 1:03d}" if state else None
        checkout = {
            "order_id": order_id,
            "value": total,
            "revenue": total,
            "currency": "USD",
            "products": lines,
        }
        send("track", ts, event="Checkout Started", properties=checkout)
        if not may_buy or state is None or person is None or rng.random() >= P_PURCHASE:
            return
        ts += timedelta(seconds=rng.randint(30, 600))
        state["orders"] += 1
        completed = {
            "order_id": order_id,
            "checkout_id": self._message_id(rng),
            "total": total,
            "revenue": total,
            "shipping": 4.95,
            "tax": 0.0,
            "currency": "USD",
            "products": lines,
        }
        send("track", ts, event="Order Completed", properties=completed)
        self._order(fp, rng, index, person, order_id, ts, total, cart)
