"""Simulate one person's footprint in every source, deterministically from (seed, person).

Each person draws from a random generator seeded by the run seed and the person's index, so
the output does not depend on how people are batched and any person can be regenerated alone.
Identifiers of another person (a shared household device) are derived from that person's index
by the same hash, without state. Each source's part is its own module (web, commerce, esp);
the person's life (who they are, which sources know them) is here.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from inboxgraph.generate import catalog
from inboxgraph.generate.analytics import WEB_TOOLS
from inboxgraph.generate.commerce import CRMS, CommerceSimulation
from inboxgraph.generate.esp import EspSimulation
from inboxgraph.generate.footprint import (
    P_ALIAS,
    P_ANONYMOUS_ONLY,
    P_BAD,
    P_CRM_FOR_REGISTERED,
    P_CRM_ONLY,
    P_CRM_OPTOUT,
    P_ESP_ONLY,
    P_JUNK_ANON,
    P_LATE,
    P_OPT_IN_AT_SIGNUP,
    P_SHARED_DEVICE,
    Footprint,
    anonymous_id,
    as_uuid,
    iso,
    user_id,
)
from inboxgraph.generate.web import WebSimulation


class PersonSimulator(WebSimulation, CommerceSimulation, EspSimulation):
    """Builds the footprint of person ``index`` for a window of days ending at ``end``."""

    def __init__(
        self,
        seed: int,
        start: date,
        end: date,
        products: tuple,
        web_tools: tuple[str, ...] = WEB_TOOLS,
        crms: tuple[str, ...] = CRMS,
    ) -> None:
        self.seed = seed
        self.web_tools = web_tools
        self.crms = crms
        self.default_tool = "segment" if "segment" in web_tools else web_tools[0]
        self.tool = self.default_tool
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
