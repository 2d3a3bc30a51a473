"""A person's shop orders and CRM (HubSpot) contact."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from inboxgraph.generate.footprint import P_BAD, Footprint, iso, sql_ts


class CommerceSimulation:
    """Orders and contacts, mixed into :class:`~inboxgraph.generate.people.PersonSimulator`."""

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
