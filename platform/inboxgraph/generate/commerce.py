"""A person's shop orders and CRM records (a HubSpot contact, Salesforce Leads and Contacts)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from inboxgraph.generate.footprint import P_BAD, Footprint, hash_hex, iso, sql_ts

CRMS = ("hubspot", "salesforce")
# With both CRMs, which one knows a contact (by hash): HubSpot alone, Salesforce alone, or both
# (the same person with the address typed differently in each).
CRM_SHARES = (("hubspot",), 0.6), (("salesforce",), 0.25), (("hubspot", "salesforce"), 0.15)
SALESFORCE_API = "/services/data/v62.0"
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Trade Show")
OPEN_LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted")
P_CONVERTED_LEAD = 0.6  # a Salesforce Contact that began as a Lead
P_DELETED = 0.01  # a Salesforce record deleted since (queryAll returns it with IsDeleted)


def crm_systems(seed: int, index: int, crms: tuple[str, ...]) -> tuple[str, ...]:
    """Which CRMs know person ``index`` (by hash: no other draw changes)."""
    if len(crms) == 1:
        return crms
    draw = int(hash_hex(seed, index, "crm", size=4), 16) / 2**32
    for systems, share in CRM_SHARES:
        draw -= share
        if draw < 0:
            return systems
    return CRM_SHARES[-1][0]


def salesforce_time(ts: datetime) -> str:
    """As the REST API writes a datetime: ``2026-11-30T08:00:00.000+0000``."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"


def salesforce_id(prefix: str, index: int) -> str:
    """An 18-character record id (``003`` Contact, ``00Q`` Lead)."""
    return f"{prefix}{index:012d}AAA"


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
        systems = crm_systems(self.seed, index, self.crms)
        if "hubspot" in systems:
            fp.contact = contact
        if "salesforce" in systems:
            self._salesforce(fp, index, person, opted_out, created, stage)

    def _salesforce(
        self,
        fp: Footprint,
        index: int,
        person: dict,
        opted_out: bool,
        created: datetime,
        stage: str,
    ) -> None:
        """A customer is a Contact (most of them converted from a Lead), anyone else an open
        Lead. Drawn from the person's own Salesforce stream, so no other source changes."""
        rng = random.Random(f"{self.seed}:{index}:salesforce")

        def record(kind: str, record_id: str, fields: dict) -> dict:
            updated = self._moment(rng, created)
            body = {
                "attributes": {
                    "type": kind,
                    "url": f"{SALESFORCE_API}/sobjects/{kind}/{record_id}",
                },
                "Id": record_id,
                "Email": self._email_variant(person["email"], rng),
                "FirstName": person["first"],
                "LastName": person["last"],
                "HasOptedOutOfEmail": opted_out,
                "LeadSource": rng.choice(LEAD_SOURCES),
                "CreatedDate": salesforce_time(created),
                "LastModifiedDate": salesforce_time(updated),
                "SystemModstamp": salesforce_time(updated),
                "IsDeleted": rng.random() < P_DELETED,
                **fields,
            }
            source = "salesforce_contacts" if kind == "Contact" else "salesforce_leads"
            if rng.random() < P_BAD:
                bad = rng.choice(("missing_id", "invalid_email", "impossible_timestamp"))
                fp.count_bad(source, bad)
                if bad == "missing_id":
                    body["Id"] = None
                elif bad == "invalid_email":
                    body["Email"] = "unknown"
                else:
                    body["SystemModstamp"] = "0001-01-01T00:00:00.000+0000"
            fp.salesforce.append((source, body))
            return body

        contact_id = salesforce_id("003", index)
        lead_id = salesforce_id("00Q", index)
        place = {"City": person["city"], "Country": person["country"]}
        if stage == "customer":
            record(
                "Contact",
                contact_id,
                {"MailingCity": person["city"], "MailingCountry": person["country"]},
            )
            if rng.random() < P_CONVERTED_LEAD:
                converted = {"Status": "Closed - Converted", "IsConverted": True}
                record("Lead", lead_id, {**place, **converted, "ConvertedContactId": contact_id})
        else:
            status = rng.choice(OPEN_LEAD_STATUSES)
            open_lead = {"Status": status, "IsConverted": False, "ConvertedContactId": None}
            record("Lead", lead_id, {**place, **open_lead})
