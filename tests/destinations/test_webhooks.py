"""The collector's ESP webhook endpoints: each vendor's authentication (Mailchimp's secret URL,
SendGrid's ECDSA signature, Klaviyo's HMAC), 401 and nothing landed otherwise, and what lands
passes the lake's ESP event checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import orjson
import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inboxgraph.collector import CollectorSettings, EspEventsSink, LandingSink, build_app
from inboxgraph.resources.sources import EventFolderSource
from inboxgraph.transforms import esp_events
from inboxgraph.transforms.common import split_quarantine
from tests.stream.server import serve

MAILCHIMP_SECRET = "mc-webhook-secret-0123456789"
KLAVIYO_SECRET = "klaviyo-endpoint-secret-0123"


@pytest.fixture
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


class _Client:
    """requests against the collector served by uvicorn (as in production)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return requests.post(self.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]


@contextmanager
def _client(landing: Path, sendgrid_key: ec.EllipticCurvePrivateKey) -> Iterator[_Client]:
    public = sendgrid_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings = CollectorSettings(
        webhook_secrets={
            "mailchimp": MAILCHIMP_SECRET,
            "sendgrid": base64.b64encode(public).decode(),
            "klaviyo": KLAVIYO_SECRET,
        }
    )
    app = build_app(LandingSink(landing), settings, esp_sink=EspEventsSink(landing))
    with serve(app, settings) as url:
        yield _Client(url)


def _landed(landing: Path) -> list[dict]:
    return [
        orjson.loads(line)
        for path in sorted((landing / "esp_events").rglob("webhook-*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]


def _mailchimp_form(kind: str, email: str, **data: str) -> dict[str, str]:
    form = {
        "type": kind,
        "fired_at": "2026-12-02 10:15:00",
        "data[email]": email,
        "data[id]": "8a25ff1d98",
        "data[list_id]": "a1b2c3d4e5",
    }
    form.update({f"data[{k}]": v for k, v in data.items()})
    return form


def test_mailchimp_webhooks_need_the_secret_url(tmp_path: Path, sendgrid_key) -> None:  # type: ignore[no-untyped-def]
    with _client(tmp_path, sendgrid_key) as client:
        assert client.get(f"/webhooks/mailchimp?secret={MAILCHIMP_SECRET}").status_code == 200
        refused = client.post(
            "/webhooks/mailchimp?secret=guess",
            data=_mailchimp_form("unsubscribe", "ana@example.com"),
        )
        unsigned = client.post(
            "/webhooks/mailchimp", data=_mailchimp_form("unsubscribe", "ana@example.com")
        )
        assert (refused.status_code, unsigned.status_code) == (401, 401)
        assert _landed(tmp_path) == []
        for kind, extra in (
            ("unsubscribe", {"reason": "manual"}),
            ("cleaned", {"reason": "hard"}),
            ("cleaned", {"reason": "abuse"}),
            ("profile", {}),
        ):
            answer = client.post(
                f"/webhooks/mailchimp?secret={MAILCHIMP_SECRET}",
                data=_mailchimp_form(kind, "Ana@Example.com", **extra),
            )
            assert answer.status_code == 200
        assert [e["event"] for e in _landed(tmp_path)] == ["unsubscribe", "bounce", "spamreport"]


def _signed(
    key: ec.EllipticCurvePrivateKey, body: bytes, at: float | None = None
) -> dict[str, str]:
    timestamp = str(int(at if at is not None else time.time()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def test_sendgrid_events_need_a_valid_recent_signature(tmp_path: Path, sendgrid_key) -> None:  # type: ignore[no-untyped-def]
    with _client(tmp_path, sendgrid_key) as client:
        events = [
            {
                "email": "bo@example.com",
                "timestamp": int(time.time()),
                "event": "unsubscribe",
                "sg_event_id": "sg-1",
                "sg_message_id": "m-1",
            },
            {
                "email": "cy@example.com",
                "timestamp": int(time.time()),
                "event": "spamreport",
                "sg_event_id": "sg-2",
                "sg_message_id": "m-2",
            },
        ]
        body = json.dumps(events).encode()
        tampered = body.replace(b"bo@", b"bx@")
        assert (
            client.post(
                "/webhooks/sendgrid", data=tampered, headers=_signed(sendgrid_key, body)
            ).status_code
            == 401
        )
        stale = _signed(sendgrid_key, body, at=time.time() - 3600)
        assert client.post("/webhooks/sendgrid", data=body, headers=stale).status_code == 401
        other = ec.generate_private_key(ec.SECP256R1())
        assert (
            client.post("/webhooks/sendgrid", data=body, headers=_signed(other, body)).status_code
            == 401
        )
        assert _landed(tmp_path) == []
        assert (
            client.post(
                "/webhooks/sendgrid", data=body, headers=_signed(sendgrid_key, body)
            ).status_code
            == 200
        )
        assert [e["sg_event_id"] for e in _landed(tmp_path)] == ["sg-1", "sg-2"]


def test_klaviyo_webhooks_need_the_hmac(tmp_path: Path, sendgrid_key) -> None:  # type: ignore[no-untyped-def]
    with _client(tmp_path, sendgrid_key) as client:
        body = json.dumps(
            {
                "data": [
                    {
                        "id": "wh-1",
                        "topic": "event:klaviyo.unsubscribed_from_email_marketing",
                        "attributes": {"profile": {"email": "di@example.com"}},
                    }
                ]
            }
        ).encode()
        timestamp = str(int(time.time()))
        good = hmac.new(
            KLAVIYO_SECRET.encode(), body + timestamp.encode(), hashlib.sha256
        ).hexdigest()
        headers = {"Klaviyo-Timestamp": timestamp, "Content-Type": "application/json"}
        assert (
            client.post(
                "/webhooks/klaviyo", data=body, headers={**headers, "Klaviyo-Signature": "0" * 64}
            ).status_code
            == 401
        )
        assert (
            client.post(
                "/webhooks/klaviyo", data=body, headers={**headers, "Klaviyo-Signature": good}
            ).status_code
            == 200
        )
        assert [(e["email"], e["event"]) for e in _landed(tmp_path)] == [
            ("di@example.com", "unsubscribe")
        ]


def test_an_esp_without_a_secret_has_no_endpoint(tmp_path: Path) -> None:
    app = build_app(LandingSink(tmp_path), CollectorSettings(), esp_sink=EspEventsSink(tmp_path))
    with serve(app) as url:
        answer = requests.post(
            f"{url}/webhooks/mailchimp", data={"type": "unsubscribe"}, timeout=10
        )
    assert answer.status_code == 404


def test_what_the_webhooks_land_passes_the_lakes_esp_event_checks(
    tmp_path: Path, sendgrid_key
) -> None:  # type: ignore[no-untyped-def]
    with _client(tmp_path, sendgrid_key) as client:
        for kind, extra in (
            ("unsubscribe", {}),
            ("cleaned", {"reason": "hard"}),
            ("subscribe", {}),
        ):
            client.post(
                f"/webhooks/mailchimp?secret={MAILCHIMP_SECRET}",
                data=_mailchimp_form(kind, "ed@example.com", **extra),
            )
        day = next((tmp_path / "esp_events").iterdir()).name
        reader = EventFolderSource(folder="esp_events", landing_url=str(tmp_path))
        prepared = esp_events.prepare(reader.read_lines(day), date.fromisoformat(day))
        landed, quarantined = split_quarantine(prepared, list(esp_events.LANDED_COLUMNS))
        assert quarantined.is_empty(), quarantined
        assert sorted(landed["event"].to_list()) == ["bounce", "group_resubscribe", "unsubscribe"]
