"""The demo's audiences delivered to three ESPs through their APIs (local fakes), with Mailchimp
down: Klaviyo and Braze still sync, the Mailchimp step fails with a clear message and one alert;
once Mailchimp is back, its sync completes. Each fake then holds exactly the subscribed members
of every segment, with their fields, and nobody who is not subscribed."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from inboxgraph.alerts import AlertWebhook
from inboxgraph.runner import prepare_instance, run_pipeline
from inboxgraph.sensors import alerts_sensor
from inboxgraph.settings import Paths
from tests.conftest import generate, home_environment
from tests.destinations.fake_esps import FakeBraze, FakeKlaviyo, FakeMailchimp, subscriber_hash
from tests.e2e.pipeline import AS_OF
from tests.quality.receiver import webhook_receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Paths, dict, object]]:
    fakes = {"mailchimp": FakeMailchimp(down=True), "klaviyo": FakeKlaviyo(), "braze": FakeBraze()}
    with home_environment(tmp_path_factory.mktemp("esp")) as paths, ExitStack() as stack:
        for fake in fakes.values():
            stack.enter_context(fake.serve())
        os.environ.update(
            INBOXGRAPH_MAILCHIMP_API_KEY=fakes["mailchimp"].api_key,
            INBOXGRAPH_MAILCHIMP_LIST_ID=fakes["mailchimp"].list_id,
            INBOXGRAPH_MAILCHIMP_API_URL=fakes["mailchimp"].url,
            INBOXGRAPH_KLAVIYO_API_KEY=fakes["klaviyo"].api_key,
            INBOXGRAPH_KLAVIYO_LIST_ID=fakes["klaviyo"].list_id,
            INBOXGRAPH_KLAVIYO_API_URL=fakes["klaviyo"].url,
            INBOXGRAPH_BRAZE_API_KEY=fakes["braze"].api_key,
            INBOXGRAPH_BRAZE_API_URL=fakes["braze"].url,
        )
        generate(Path(paths.landing_url), people=500, days=60)
        summary = run_pipeline(paths, as_of=AS_OF, log=lambda _: None)
        yield paths, fakes, summary


def _expected(paths: Paths) -> dict[str, set[str]]:
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        rows = con.sql(
            "select m.email, m.segment_id from marts.segment_memberships m "
            "join marts.customer_profiles p using (person_id) "
            "where p.preferences.email_status = 'subscribed'"
        ).fetchall()
    expected: dict[str, set[str]] = {}
    for email, segment in rows:
        expected.setdefault(email, set()).add(segment)
    return expected


def _statuses(paths: Paths) -> dict[str, str]:
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        return dict(
            con.sql(
                "select email, preferences.email_status from marts.customer_profiles "
                "where email is not null"
            ).fetchall()
        )


def test_mailchimp_down_leaves_klaviyo_and_braze_synced_and_alerts_once(delivered) -> None:  # type: ignore[no-untyped-def]
    paths, fakes, summary = delivered
    assert list(summary.failed_steps) == ["activation__mailchimp_export"]
    assert "Mailchimp" in summary.failed_steps["activation__mailchimp_export"]
    expected = _expected(paths)
    assert expected, "the demo has segment members"
    assert fakes["klaviyo"].audience() == expected
    assert fakes["braze"].audience() == expected
    assert fakes["mailchimp"].members == {}
    with webhook_receiver() as (url, received):
        cursor = None
        for _ in range(2):
            context = dg.build_sensor_context(
                instance=prepare_instance(paths),
                cursor=cursor,
                resources={"alert_webhook": AlertWebhook(url=url)},
            )
            alerts_sensor(context)
            cursor = context.cursor
    runs = [a["inboxgraph"] for a in received if a["inboxgraph"]["kind"] == "run"]
    assert [(a["subject"], a["state"]) for a in runs] == [("refresh_warehouse", "FAIL")]
    assert "activation__mailchimp_export" in runs[0]["detail"]


def test_once_mailchimp_is_back_its_sync_completes_with_the_merge_fields(delivered) -> None:  # type: ignore[no-untyped-def]
    paths, fakes, _ = delivered
    fakes["mailchimp"].down = False
    from inboxgraph.assets.activation import EXPORT_KEYS, activation_assets
    from inboxgraph.definitions import defs

    result = dg.materialize(
        activation_assets,
        resources=defs.resources,
        instance=prepare_instance(paths),
        selection=dg.AssetSelection.assets(*EXPORT_KEYS),
    )
    assert result.success
    expected = _expected(paths)
    assert fakes["mailchimp"].audience() == expected
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        email, first_name = con.sql(
            "select email, first_name from marts.audience_members where first_name is not null "
            "order by email limit 1"
        ).fetchone()
    member = fakes["mailchimp"].members[subscriber_hash(email)]
    assert member["merge_fields"]["FNAME"] == first_name
    person = next(u for u in fakes["braze"].users.values() if u.get("email") == email)
    assert person["first_name"] == first_name
    # The other two had nothing new to send.
    metadata = {
        e.event_specific_data.materialization.asset_key.path[
            -1
        ]: e.event_specific_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert metadata["klaviyo_export"]["people_changed"].value == 0
    assert metadata["braze_export"]["people_changed"].value == 0


def test_nobody_who_is_not_subscribed_is_in_any_esps_audience(delivered) -> None:  # type: ignore[no-untyped-def]
    paths, fakes, _ = delivered
    statuses = _statuses(paths)
    for esp, fake in fakes.items():
        for email in fake.audience():
            assert statuses.get(email) == "subscribed", (esp, email)


def test_the_sync_log_says_what_each_destination_did(delivered) -> None:  # type: ignore[no-untyped-def]
    paths, _, _ = delivered
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        rows = con.sql(
            "select destination, sum(added), sum(failed) from marts.sync_log "
            "where not dry_run group by 1 order by 1"
        ).fetchall()
    logged = {destination: (added, failed) for destination, added, failed in rows}
    assert set(logged) >= {"klaviyo", "braze"}
    assert logged["klaviyo"][0] > 0 and logged["klaviyo"][1] == 0


def test_an_unsubscribe_webhook_removes_her_from_every_esp_at_the_next_sync(delivered) -> None:  # type: ignore[no-untyped-def]
    """No refresh in between: the webhook lands an ESP event, the events are landed in the
    lake, and the next sync leaves her out everywhere and suppresses her; an unsigned or
    wrongly signed webhook gets 401 and changes nothing."""
    import requests

    from inboxgraph.assets.activation import EXPORT_KEYS, activation_assets
    from inboxgraph.collector import CollectorSettings, EspEventsSink, LandingSink, build_app
    from inboxgraph.definitions import defs
    from tests.stream.server import serve

    paths, fakes, _ = delivered
    fakes["mailchimp"].down = False

    def sync() -> None:
        result = dg.materialize(
            activation_assets,
            resources=defs.resources,
            instance=prepare_instance(paths),
            selection=dg.AssetSelection.assets(*EXPORT_KEYS),
        )
        assert result.success

    sync()  # every ESP up to date (Mailchimp was down at first)
    email = sorted(_expected(paths))[0]
    assert all(email in fake.audience() for fake in fakes.values())
    secret = "mailchimp-webhook-secret-42"
    landing = Path(paths.landing_url)
    settings = CollectorSettings(webhook_secrets={"mailchimp": secret})
    app = build_app(LandingSink(landing), settings, esp_sink=EspEventsSink(landing))
    form = {"type": "unsubscribe", "fired_at": "2026-12-02 10:15:00", "data[email]": email}
    with serve(app, settings) as url:
        unsigned = requests.post(f"{url}/webhooks/mailchimp", data=form, timeout=10)
        wrong = requests.post(f"{url}/webhooks/mailchimp?secret=guess", data=form, timeout=10)
        assert (unsigned.status_code, wrong.status_code) == (401, 401)
        assert not list((landing / "esp_events").rglob("webhook-*.jsonl"))
        signed = requests.post(f"{url}/webhooks/mailchimp?secret={secret}", data=form, timeout=10)
        assert signed.status_code == 200
    run_pipeline(paths, as_of=AS_OF, log=lambda _: None, warehouse=False)  # lands the events

    sync()
    for esp, fake in fakes.items():
        assert email not in fake.audience(), esp
    assert fakes["mailchimp"].members[subscriber_hash(email)]["status"] == "unsubscribed"
    assert email in fakes["klaviyo"].suppressed
    braze = next(u for u in fakes["braze"].users.values() if u.get("email") == email)
    assert braze["email_subscribe"] == "unsubscribed"
    # Never added again: a later sync, and the profiles rebuilt, leave her out still.
    rerun = run_pipeline(paths, as_of=AS_OF, log=lambda _: None)
    assert rerun.succeeded, rerun.failed_steps
    sync()
    for esp, fake in fakes.items():
        assert email not in fake.audience(), esp
