"""Simulate one person's footprint in every source, deterministically from (seed, person).

Each person draws from a random generator seeded by the run seed and the person's index, so
the output does not depend on how people are batched and any person can be regenerated alone.
Identifiers of another person (a shared household device) are derived from that person's index
by the same hash, without state.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import orjson

from inboxgraph.generate import catalog

# How often things happen; tuned so the funnels and data-quality problems look like a shop's.
P_ANONYMOUS_ONLY = 0.30
P_CRM_ONLY = 0.08
P_ESP_ONLY = 0.04
P_CRM_FOR_REGISTERED = 0.6
P_OPT_IN_AT_SIGNUP = 0.7
P_CRM_OPTOUT = 0.15
P_SHARED_DEVICE = 0.01
P_ALIAS = 0.05
P_JUNK_ANON = 0.004
P_LATE = 0.015
P_DUPLICATE = 0.005
P_BAD = 0.005
P_ADD_TO_CART = 0.35
P_CHECKOUT = 0.55
P_PURCHASE = 0.6

WEB_BAD_KINDS = (
    "invalid_json",
    "missing_message_id",
    "missing_identity",
    "wrong_type",
    "impossible_timestamp",
)
ESP_BAD_KINDS = ("invalid_json", "missing_event_id", "invalid_email", "wrong_type")


def _hash_hex(*parts: object, size: int = 16) -> str:
    return hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=size).hexdigest()


def as_uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:32]}"


def anonymous_id(seed: int, person: int, device: int) -> str:
    return as_uuid(_hash_hex(seed, person, "device", device))


def user_id(seed: int, person: int) -> str:
    return "usr_" + _hash_hex(seed, person, "user", size=6)


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def sql_ts(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Footprint:
    """Everything one person leaves behind, ready to be written by the landing writers."""

    web: list[tuple[date, dict | str]] = field(default_factory=list)
    esp: list[tuple[date, dict | str]] = field(default_factory=list)
    contact: dict | None = None
    customer: tuple | None = None
    orders: list[tuple] = field(default_factory=list)
    order_items: list[tuple] = field(default_factory=list)
    enrichment: dict[str, dict] = field(default_factory=dict)
    bad: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)

    def count_bad(self, source: str, kind: str) -> None:
        per_source = self.bad.setdefault(source, {})
        per_source[kind] = per_source.get(kind, 0) + 1


class PersonSimulator:
    """Builds the footprint of person ``index`` for a window of days ending at ``end``."""

    def __init__(self, seed: int, start: date, end: date, products: tuple) -> None:
        self.seed = seed
        self.start = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self.end_day = end
        self.end = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
        self.span = (self.end - self.start).total_seconds()
        self.products = products

    # ----------------------------------------------------------------- helpers
    def _moment(self, rng: random.Random, after: datetime | None = None) -> datetime:
        lo = after or self.start
        room = (self.end - lo).total_seconds()
        return lo + timedelta(seconds=rng.random() * max(room, 1) * 0.999)

    def _message_id(self, rng: random.Random) -> str:
        return as_uuid(f"{rng.getrandbits(128):032x}")

    @staticmethod
    def _email_variant(email: str, rng: random.Random) -> str:
        local, domain = email.split("@")
        choice = rng.randrange(6)
        if choice == 0:
            return f"{local.title()}@{domain}"
        if choice == 1:
            return f"  {email} "
        if choice == 2:
            return email.upper()
        if choice == 3:
            return f"{local}@{domain.upper()}\t"
        return email

    def _received(self, rng: random.Random, ts: datetime) -> date:
        if rng.random() < P_LATE:
            late = ts + timedelta(days=rng.randint(1, 5), hours=rng.randint(0, 12))
            return min(late.date(), self.end_day)
        return min((ts + timedelta(seconds=rng.randint(1, 90))).date(), self.end_day)

    # ----------------------------------------------------------------- web
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
        received = self._received(rng, ts)
        if rng.random() < P_BAD:
            fp.web.append((received, self._corrupt_web(message, rng, fp)))
            return
        fp.web.append((received, message))
        if rng.random() < P_DUPLICATE:
            same_day = rng.random() < 0.5
            again = received if same_day else min(received + timedelta(days=1), self.end_day)
            fp.web.append((again, message))
            key = "web_events_same_partition" if again == received else "web_events_other_partition"
            fp.duplicates[key] = fp.duplicates.get(key, 0) + 1

    def _corrupt_web(self, message: dict, rng: random.Random, fp: Footprint) -> dict | str:
        has_email = message["type"] == "identify" and "email" in message.get("traits", {})
        kinds = WEB_BAD_KINDS + (("invalid_email",) if has_email else ())
        kind = rng.choice(kinds)
        fp.count_bad("web_events", kind)
        bad = dict(message)
        if kind == "invalid_json":
            text = orjson.dumps(bad).decode()
            return text[: len(text) // 2]
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
        return bad

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

    # ----------------------------------------------------------------- person
    def simulate(self, index: int) -> Footprint:
        rng = random.Random(f"{self.seed}:{index}")
        fp = Footprint()
        first = rng.choice(catalog.FIRST_NAMES)
        last = rng.choice(catalog.LAST_NAMES)
        email = f"{first}.{last}{index}@{rng.choice(catalog.EMAIL_DOMAINS)}".lower()
        city, country = rng.choice(catalog.PLACES)
        person = {"first": first, "last": last, "email": email, "city": city, "country": country}
        roll = rng.random()
        if roll < P_ANONYMOUS_ONLY:
            self._anonymous_visitor(fp, rng, index)
        elif roll < P_ANONYMOUS_ONLY + P_CRM_ONLY:
            opted_out = rng.random() < P_CRM_OPTOUT
            self._contact(fp, rng, index, person, opted_out, self._moment(rng), "lead")
            if not opted_out and rng.random() < 0.5:
                self._esp_campaigns(fp, rng, email, self.start)
        elif roll < P_ANONYMOUS_ONLY + P_CRM_ONLY + P_ESP_ONLY:
            self._esp_campaigns(fp, rng, email, self.start)
        else:
            self._registered(fp, rng, index, person)
        self._enrichment(fp, rng, person)
        return fp

    def _anonymous_visitor(self, fp: Footprint, rng: random.Random, index: int) -> None:
        anon = anonymous_id(self.seed, index, 0)
        ua = rng.choice(catalog.USER_AGENTS)
        for _ in range(1 + int(rng.expovariate(1.0))):
            self._session(fp, rng, self._moment(rng), anon, None, ua, may_buy=False)

    def _registered(self, fp: Footprint, rng: random.Random, index: int, person: dict) -> None:
        uid = user_id(self.seed, index)
        devices = [anonymous_id(self.seed, index, k) for k in range(1 + int(rng.random() * 2.4))]
        if index > 0 and rng.random() < P_SHARED_DEVICE:
            # A household tablet: the previous person's first device, used by this person too.
            devices.append(anonymous_id(self.seed, index - 1, 0))
        agents = {d: rng.choice(catalog.USER_AGENTS) for d in devices}
        opt_in = rng.random() < P_OPT_IN_AT_SIGNUP
        sessions = sorted(self._moment(rng) for _ in range(2 + int(rng.expovariate(1 / 3.0))))
        signup_at = sessions[min(len(sessions) - 1, rng.randrange(2))]
        state = {"signed_up": False, "orders": 0, "identified": set()}
        for started in sessions:
            device = rng.choice(devices)
            logged_in = state["signed_up"] or started >= signup_at
            if logged_in and not state["signed_up"]:
                state["signed_up"] = True
                traits = {
                    "email": self._email_variant(person["email"], rng),
                    "firstName": person["first"],
                    "lastName": person["last"],
                    "address": {"city": person["city"], "country": person["country"]},
                    "createdAt": iso(started),
                    "email_opt_in": opt_in,
                }
                self._web(fp, rng, "identify", started, device, uid, agents[device], traits=traits)
                state["identified"].add(device)
                if rng.random() < P_ALIAS:
                    self._web(
                        fp, rng, "alias", started, device, uid, agents[device], previousId=device
                    )
            elif logged_in and device not in state["identified"]:
                self._web(
                    fp,
                    rng,
                    "identify",
                    started,
                    device,
                    uid,
                    agents[device],
                    traits={"email": self._email_variant(person["email"], rng)},
                )
                state["identified"].add(device)
            anon = rng.choice(catalog.JUNK_ANONYMOUS_IDS) if rng.random() < P_JUNK_ANON else device
            self._session(
                fp,
                rng,
                started,
                anon,
                uid if logged_in else None,
                agents[device],
                may_buy=logged_in,
                index=index,
                person=person,
                state=state,
            )
        if rng.random() < 0.02:
            later = self._moment(rng, sessions[-1])
            device = devices[0]
            self._web(
                fp,
                rng,
                "identify",
                later,
                device,
                uid,
                agents[device],
                traits={"unsubscribed": True},
            )
            opt_in = False
        if rng.random() < P_CRM_FOR_REGISTERED:
            self._contact(
                fp,
                rng,
                index,
                person,
                rng.random() < P_CRM_OPTOUT,
                sessions[0],
                "customer" if state["orders"] else "lead",
            )
        if opt_in:
            self._esp_campaigns(fp, rng, person["email"], signup_at)

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
        ts = started
        name, path = rng.choice(catalog.PAGES)
        self._web(
            fp,
            rng,
            "page",
            ts,
            anon,
            uid,
            ua,
            name=name,
            properties={
                "path": path,
                "url": f"https://shop.example.com{path}",
                "title": name,
                "referrer": "",
            },
        )
        viewed = []
        for _ in range(1 + int(rng.expovariate(0.5))):
            ts += timedelta(seconds=rng.randint(10, 240))
            product = rng.choice(self.products)
            viewed.append(product)
            path = f"/products/{product.product_id.lower()}"
            self._web(
                fp,
                rng,
                "page",
                ts,
                anon,
                uid,
                ua,
                name=product.name,
                properties={
                    "path": path,
                    "url": f"https://shop.example.com{path}",
                    "title": product.name,
                    "category": product.category,
                },
            )
            self._web(
                fp,
                rng,
                "track",
                ts,
                anon,
                uid,
                ua,
                event="Product Viewed",
                properties=self._product_props(product),
            )
        if rng.random() >= P_ADD_TO_CART:
            return
        cart = [rng.choice(viewed) for _ in range(1 + int(rng.random() * 1.5))]
        for product in cart:
            ts += timedelta(seconds=rng.randint(5, 120))
            self._web(
                fp,
                rng,
                "track",
                ts,
                anon,
                uid,
                ua,
                event="Product Added",
                properties={**self._product_props(product), "cart_id": self._message_id(rng)},
            )
        if rng.random() >= P_CHECKOUT:
            return
        ts += timedelta(seconds=rng.randint(20, 300))
        lines = [self._product_props(p) for p in cart]
        total = round(sum(p.price for p in cart), 2)
        order_id = f"ORD-{index:07d}-{state['orders'] + 1:03d}" if state else None
        self._web(
            fp,
            rng,
            "track",
            ts,
            anon,
            uid,
            ua,
            event="Checkout Started",
            properties={
                "order_id": order_id,
                "value": total,
                "revenue": total,
                "currency": "USD",
                "products": lines,
            },
        )
        if not may_buy or state is None or person is None or rng.random() >= P_PURCHASE:
            return
        ts += timedelta(seconds=rng.randint(30, 600))
        state["orders"] += 1
        self._web(
            fp,
            rng,
            "track",
            ts,
            anon,
            uid,
            ua,
            event="Order Completed",
            properties={
                "order_id": order_id,
                "checkout_id": self._message_id(rng),
                "total": total,
                "revenue": total,
                "shipping": 4.95,
                "tax": 0.0,
                "currency": "USD",
                "products": lines,
            },
        )
        self._order(fp, rng, index, person, order_id, ts, total, cart)

    # ----------------------------------------------------------------- shop and CRM
    def _order(
        self,
        fp: Footprint,
        rng: random.Random,
        index: int,
        person: dict,
        order_id: str,
        ts: datetime,
        total: float,
        cart: list,
    ) -> None:
        customer_id = 10_000 + index
        if fp.customer is None:
            email = self._email_variant(person["email"], rng)
            if rng.random() < P_BAD:
                fp.count_bad("shop_customers", "invalid_email")
                email = email.strip().split("@")[0]
            fp.customer = (
                customer_id,
                email,
                person["first"],
                person["last"],
                sql_ts(ts),
                sql_ts(ts),
            )
        status, updated = "completed", ts
        if rng.random() < 0.4:
            shipped = ts + timedelta(hours=rng.randint(6, 72))
            if shipped < self.end:
                status, updated = "shipped", shipped
                if rng.random() < 0.05:
                    refunded = shipped + timedelta(days=rng.randint(2, 10))
                    if refunded < self.end:
                        status, updated = "refunded", refunded
        amount: object = total
        created = sql_ts(ts)
        if rng.random() < P_BAD:
            kind = rng.choice(("wrong_type", "impossible_timestamp"))
            fp.count_bad("shop_orders", kind)
            if kind == "wrong_type":
                amount = "N/A"
            else:
                created = "0000-00-00 00:00:00"
        fp.orders.append((order_id, customer_id, status, amount, "USD", created, sql_ts(updated)))
        for product in cart:
            fp.order_items.append((order_id, product.product_id, 1, product.price))

    def _contact(
        self,
        fp: Footprint,
        rng: random.Random,
        index: int,
        person: dict,
        opted_out: bool,
        created: datetime,
        stage: str,
    ) -> None:
        updated = self._moment(rng, created)
        contact = {
            "id": str(5_000_000 + index),
            "properties": {
                "email": self._email_variant(person["email"], rng),
                "firstname": person["first"],
                "lastname": person["last"],
                "city": person["city"],
                "country": person["country"],
                "hs_email_optout": "true" if opted_out else "false",
                "lifecyclestage": stage,
                "createdate": iso(created),
                "lastmodifieddate": iso(updated),
                "hs_object_id": str(5_000_000 + index),
            },
            "createdAt": iso(created),
            "updatedAt": iso(updated),
            "archived": False,
        }
        if rng.random() < P_BAD:
            kind = rng.choice(("missing_id", "invalid_email", "impossible_timestamp"))
            fp.count_bad("hubspot_contacts", kind)
            if kind == "missing_id":
                contact.pop("id")
            elif kind == "invalid_email":
                contact["properties"]["email"] = "unknown"
            else:
                contact["updatedAt"] = "0001-01-01T00:00:00Z"
        fp.contact = contact

    # ----------------------------------------------------------------- ESP
    def _esp_campaigns(
        self, fp: Footprint, rng: random.Random, email: str, since: datetime
    ) -> None:
        day = self.start
        while day < self.end:
            if day >= since and rng.random() < 0.9:
                sent = day + timedelta(hours=9, seconds=rng.randint(0, 3600))
                if not self._esp_send(fp, rng, email, sent, f"campaign-{day:%Y%m%d}"):
                    return
            day += timedelta(days=7)

    def _esp(
        self,
        fp: Footprint,
        rng: random.Random,
        email: str,
        ts: datetime,
        event: str,
        message_id: str,
        category: str,
        **fields: object,
    ) -> None:
        if ts >= self.end:
            return
        record: dict = {
            "email": email,
            "timestamp": int(ts.timestamp()),
            "event": event,
            "sg_event_id": _hash_hex(rng.getrandbits(64), size=11),
            "sg_message_id": message_id,
            "category": [category],
        }
        record.update(fields)
        received = min((ts + timedelta(seconds=rng.randint(1, 30))).date(), self.end_day)
        if rng.random() < P_BAD:
            kind = rng.choice(ESP_BAD_KINDS)
            fp.count_bad("esp_events", kind)
            if kind == "invalid_json":
                text = orjson.dumps(record).decode()
                fp.esp.append((received, text[: len(text) - 7]))
                return
            if kind == "missing_event_id":
                record.pop("sg_event_id")
            elif kind == "invalid_email":
                record["email"] = email.replace("@", "")
            else:
                record["timestamp"] = "yesterday"
            fp.esp.append((received, record))
            return
        fp.esp.append((received, record))
        if rng.random() < P_DUPLICATE:
            fp.esp.append((received, record))
            fp.duplicates["esp_events_same_partition"] = (
                fp.duplicates.get("esp_events_same_partition", 0) + 1
            )

    def _esp_send(
        self, fp: Footprint, rng: random.Random, email: str, sent: datetime, category: str
    ) -> bool:
        """One campaign email; False once the address must not be mailed again."""
        mid = f"{_hash_hex(rng.getrandbits(64), size=10)}.filter0001"
        self._esp(fp, rng, email, sent, "processed", mid, category)
        roll = rng.random()
        if roll < 0.003:
            self._esp(
                fp,
                rng,
                email,
                sent + timedelta(seconds=20),
                "bounce",
                mid,
                category,
                reason=rng.choice(catalog.BOUNCE_REASONS),
                type="bounce",
                status="5.1.1",
            )
            return False
        if roll < 0.004:
            self._esp(
                fp,
                rng,
                email,
                sent + timedelta(seconds=5),
                "dropped",
                mid,
                category,
                reason="Bounced Address",
            )
            return False
        delivered = sent + timedelta(seconds=rng.randint(2, 60))
        self._esp(fp, rng, email, delivered, "delivered", mid, category, response="250 OK")
        if rng.random() < 0.3:
            opened = delivered + timedelta(minutes=rng.randint(1, 2000))
            self._esp(
                fp,
                rng,
                email,
                opened,
                "open",
                mid,
                category,
                useragent=rng.choice(catalog.USER_AGENTS),
            )
            if rng.random() < 0.2:
                product = rng.choice(self.products)
                self._esp(
                    fp,
                    rng,
                    email,
                    opened + timedelta(seconds=rng.randint(3, 120)),
                    "click",
                    mid,
                    category,
                    url=f"https://shop.example.com/products/{product.product_id.lower()}",
                )
        if rng.random() < 0.0008:
            self._esp(fp, rng, email, delivered + timedelta(hours=2), "spamreport", mid, category)
            return False
        if rng.random() < 0.004:
            self._esp(fp, rng, email, delivered + timedelta(hours=1), "unsubscribe", mid, category)
            if rng.random() < 0.2:
                self._esp(
                    fp,
                    rng,
                    email,
                    delivered + timedelta(days=2),
                    "group_resubscribe",
                    mid,
                    category,
                    asm_group_id=1,
                )
                return True
            return False
        return True

    # ----------------------------------------------------------------- enrichment
    def _enrichment(self, fp: Footprint, rng: random.Random, person: dict) -> None:
        if rng.random() < 0.25:
            row = {
                "email": person["email"] if rng.random() < 0.8 else person["email"].upper(),
                "company": f"{person['last']} {rng.choice(('Labs', 'Group', 'GmbH', 'Inc'))}",
                "job_title": rng.choice(catalog.JOB_TITLES),
                "industry": rng.choice(catalog.INDUSTRIES),
                "company_size": rng.choice(catalog.COMPANY_SIZES),
            }
            if rng.random() < P_BAD:
                kind = rng.choice(("missing_email", "invalid_email"))
                fp.count_bad("enrichment", kind)
                row["email"] = "" if kind == "missing_email" else "not-an-email"
            fp.enrichment["firmographics"] = row
        if rng.random() < 0.2:
            fp.enrichment["demographics"] = {
                "email": person["email"],
                "age_range": rng.choice(catalog.AGE_RANGES),
                "household_income": rng.choice(catalog.INCOME_BANDS),
                "has_children": rng.choice(("yes", "no")),
            }
