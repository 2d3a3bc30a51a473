"""ESP webhooks: consent changes as they happen, authenticated the way each vendor signs them,
turned into ESP events (SendGrid Event Webhook objects, the lake's ESP event format).

- **Mailchimp** (``/webhooks/mailchimp?secret=...``): Mailchimp does not sign its webhooks; its
  documentation has the endpoint carry a secret in its URL. Form-encoded ``type`` with
  ``data[email]``: ``unsubscribe`` is an unsubscribe, ``cleaned`` a hard bounce (reason
  ``hard``) or a complaint (reason ``abuse``), ``subscribe`` an opt-in. Mailchimp checks the
  URL with a GET first, answered 200.
- **SendGrid** (``/webhooks/sendgrid``): the Event Webhook's signed events, verified with the
  ECDSA public key SendGrid shows for the webhook (``X-Twilio-Email-Event-Webhook-Signature``
  over the ``...-Timestamp`` header and the raw body). The events are landed as they are.
- **Klaviyo** (``/webhooks/klaviyo``): system webhooks, an HMAC-SHA256 (hex) of the raw body and
  the ``Klaviyo-Timestamp`` header with the endpoint's secret, in ``Klaviyo-Signature``. Topics
  about unsubscribing, spam complaints and bounces become those events.
A request without a valid signature or secret gets 401 and lands nothing; a timestamp more than
five minutes away is refused too (a replayed request).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import datetime
from urllib.parse import parse_qs

import orjson

ESPS = ("mailchimp", "sendgrid", "klaviyo")
MAX_SKEW_SECONDS = 300
WITHDRAWALS = ("unsubscribe", "group_unsubscribe", "spamreport", "bounce")


class Unauthorized(Exception):
    """The request is not the ESP's: 401, nothing landed."""


class Malformed(Exception):
    """The request is the ESP's but cannot be read: 400."""


def _event(esp: str, email: str, moment: float, event: str, key: str, **extra: object) -> dict:
    digest = hashlib.sha256(f"{esp}|{key}|{email}|{event}|{moment}".encode()).hexdigest()[:32]
    return {
        "email": email,
        "timestamp": int(moment),
        "event": event,
        "sg_event_id": f"{esp}:{digest}",
        "category": f"webhook:{esp}",
        **extra,
    }


def _fresh(timestamp: str | None) -> None:
    try:
        sent = float(timestamp or "")
    except ValueError:
        raise Unauthorized("the request's timestamp is missing") from None
    if abs(time.time() - sent) > MAX_SKEW_SECONDS:
        raise Unauthorized("the request's timestamp is more than five minutes away")


def mailchimp(query: dict[str, str], body: bytes, secret: str) -> list[dict]:
    if not hmac.compare_digest(query.get("secret", "").encode(), secret.encode()):
        raise Unauthorized("the webhook URL's secret does not match")
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    kind, email = form.get("type"), (form.get("data[email]") or "").strip()
    if not kind or not email:
        raise Malformed("a Mailchimp webhook names its type and data[email]")
    try:
        fired = datetime.fromisoformat(form.get("fired_at", "")).timestamp()
    except ValueError:
        fired = time.time()
    reason = form.get("data[reason]", "")
    key = form.get("data[id]", "") + form.get("fired_at", "")
    if kind == "unsubscribe":
        return [_event("mailchimp", email, fired, "unsubscribe", key, reason=reason)]
    if kind == "cleaned" and reason == "abuse":
        return [_event("mailchimp", email, fired, "spamreport", key)]
    if kind == "cleaned":
        return [_event("mailchimp", email, fired, "bounce", key, type="bounce", reason=reason)]
    if kind == "subscribe":
        return [_event("mailchimp", email, fired, "group_resubscribe", key)]
    return []  # profile, upemail, campaign: no consent in them


def sendgrid(headers: dict[str, str], body: bytes, public_key: str) -> list[dict]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    signature = headers.get("x-twilio-email-event-webhook-signature", "")
    timestamp = headers.get("x-twilio-email-event-webhook-timestamp", "")
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key))
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError, AssertionError):
        raise Unauthorized("the Event Webhook signature does not verify") from None
    _fresh(timestamp)
    try:
        events = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("the Event Webhook's body is not JSON") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Malformed("the Event Webhook's body is an array of events")
    return events


def klaviyo(headers: dict[str, str], body: bytes, secret: str) -> list[dict]:
    timestamp = headers.get("klaviyo-timestamp", "")
    expected = hmac.new(secret.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(headers.get("klaviyo-signature", "").encode(), expected.encode()):
        raise Unauthorized("the Klaviyo-Signature does not verify")
    _fresh(timestamp)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Malformed("the webhook's body is not JSON") from None
    events = []
    for item in payload.get("data", []) if isinstance(payload, dict) else []:
        topic = str(item.get("topic") or (item.get("attributes") or {}).get("topic") or "")
        email = _find_email(item)
        if not email:
            continue
        moment = time.time()
        event = (
            "unsubscribe"
            if "unsubscribed" in topic
            else "spamreport"
            if "spam" in topic
            else "bounce"
            if "bounced" in topic
            else None
        )
        if event:
            key = str(item.get("id", "")) + topic
            events.append(_event("klaviyo", email, moment, event, key))
    return events


def _find_email(item: object, depth: int = 0) -> str | None:
    """The first ``email`` in a webhook item (its profile's), a few levels deep at most."""
    if depth > 4:
        return None
    if isinstance(item, dict):
        value = item.get("email")
        if isinstance(value, str) and "@" in value:
            return value
        for child in item.values():
            if (found := _find_email(child, depth + 1)) is not None:
                return found
    if isinstance(item, list):
        for child in item[:20]:
            if (found := _find_email(child, depth + 1)) is not None:
                return found
    return None


def verify(
    esp: str, query: dict[str, str], headers: dict[str, str], body: bytes, secret: str
) -> list[dict]:
    """The ESP events of one authenticated webhook request."""
    if esp == "mailchimp":
        return mailchimp(query, body, secret)
    if esp == "sendgrid":
        return sendgrid(headers, body, secret)
    return klaviyo(headers, body, secret)
