"""A person's ESP (SendGrid) events: campaigns sent to them and what they did with them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import orjson

from inboxgraph.generate import catalog
from inboxgraph.generate.footprint import ESP_BAD_KINDS, P_BAD, P_DUPLICATE, Footprint, hash_hex


class EspSimulation:
    """ESP events, mixed into :class:`~inboxgraph.generate.people.PersonSimulator`."""

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
            "sg_event_id": hash_hex(rng.getrandbits(64), size=11),
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
        mid = f"{hash_hex(rng.getrandbits(64), size=10)}.filter0001"

        def send(at: datetime, event: str, **fields: object) -> None:
            self._esp(fp, rng, email, at, event, mid, category, **fields)

        send(sent, "processed")
        roll = rng.random()
        if roll < 0.003:
            reason = rng.choice(catalog.BOUNCE_REASONS)
            bounced = sent + timedelta(seconds=20)
            send(bounced, "bounce", reason=reason, type="bounce", status="5.1.1")
            return False
        if roll < 0.004:
            send(sent + timedelta(seconds=5), "dropped", reason="Bounced Address")
            return False
        delivered = sent + timedelta(seconds=rng.randint(2, 60))
        send(delivered, "delivered", response="250 OK")
        if rng.random() < 0.3:
            opened = delivered + timedelta(minutes=rng.randint(1, 2000))
            send(opened, "open", useragent=rng.choice(catalog.USER_AGENTS))
            if rng.random() < 0.2:
                product = rng.choice(self.products)
                clicked = opened + timedelta(seconds=rng.randint(3, 120))
                url = f"https://shop.example.com/products/{product.product_id.lower()}"
                send(clicked, "click", url=url)
        if rng.random() < 0.0008:
            send(delivered + timedelta(hours=2), "spamreport")
            return False
        if rng.random() < 0.004:
            send(delivered + timedelta(hours=1), "unsubscribe")
            if rng.random() < 0.2:
                send(delivered + timedelta(days=2), "group_resubscribe", asm_group_id=1)
                return True
            return False
        return True
