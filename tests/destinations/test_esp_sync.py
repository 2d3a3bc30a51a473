"""Audiences synced to Mailchimp, Klaviyo and Braze through their APIs (local fakes that enforce
each vendor's contract): the fakes end up holding exactly the audience, changes go out once,
faults and a sync killed midway lose and double nothing, refused people are logged with the
ESP's reason, and a dry run sends nothing."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import dagster as dg
import duckdb
import polars as pl
import pytest

from inboxgraph.destinations import FIELDS, sync
from inboxgraph.resources.esp_api import BrazeApi, KlaviyoApi, MailchimpApi
from tests.destinations.fake_esps import FakeBraze, FakeKlaviyo, FakeMailchimp

ESPS = ("mailchimp", "klaviyo", "braze")


def _audience(
    people: int, segments: tuple[str, ...] = ("cart_abandoners", "engaged_readers")
) -> pl.DataFrame:
    rows = []
    for n in range(people):
        for k, segment in enumerate(segments):
            if (n + k) % 3 == 0 and k:
                continue  # not everyone is in every segment
            rows.append(
                {
                    "segment_id": segment,
                    "person_id": f"p_{n:05d}",
                    "email": f"person{n}@example.com",
                    "first_name": f"First{n}",
                    "last_name": "Doe",
                    "top_category": "Apparel",
                    "featured_products": ["P0001", "P0002"],
                    "lifetime_value_tier": "gold" if n % 4 == 0 else None,
                }
            )
    return pl.DataFrame(rows, schema_overrides={"featured_products": pl.List(pl.String)})


def _expected(audience: pl.DataFrame) -> dict[str, set[str]]:
    expected: dict[str, set[str]] = {}
    for row in audience.iter_rows(named=True):
        expected.setdefault(row["email"], set()).add(row["segment_id"])
    return expected


@contextmanager
def _fakes() -> Iterator[dict]:
    fakes = {"mailchimp": FakeMailchimp(), "klaviyo": FakeKlaviyo(), "braze": FakeBraze()}
    with ExitStack() as stack:
        for fake in fakes.values():
            stack.enter_context(fake.serve())
        yield fakes


def _destination(esp: str, fake, **overrides):  # type: ignore[no-untyped-def]
    common = {"api_key": fake.api_key, "api_url": fake.url, "backoff_seconds": 0.05, **overrides}
    if esp == "mailchimp":
        return MailchimpApi(list_id=fake.list_id, **common)
    if esp == "klaviyo":
        return KlaviyoApi(list_id=fake.list_id, **common)
    return BrazeApi(**common)


def _warehouse(tmp_path) -> duckdb.DuckDBPyConnection:  # type: ignore[no-untyped-def]
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("create schema if not exists marts")
    return connection


@pytest.mark.parametrize("esp", ESPS)
def test_a_sync_leaves_the_esp_holding_the_audience_and_sends_each_change_once(
    esp: str, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    audience = _audience(180)
    connection = _warehouse(tmp_path)
    with _fakes() as fakes:
        fake = fakes[esp]
        destination = _destination(esp, fake)
        first = sync(connection, destination, audience, "run-1", log=lambda _: None)
        assert fake.audience() == _expected(audience)
        assert first.totals()["failed"] == 0 and first.totals()["added"] == audience.height
        sent_first = len(fake.bodies)
        # Nothing changed: nothing is sent.
        again = sync(connection, destination, audience, "run-2", log=lambda _: None)
        assert len(fake.bodies) == sent_first
        assert again.totals() == {
            "added": 0,
            "removed": 0,
            "unchanged": audience.height,
            "failed": 0,
        }
        # Three people leave a segment, one leaves every segment, one joins.
        changed = audience.filter(
            ~(
                (pl.col("person_id").is_in(["p_00001", "p_00002", "p_00004"]))
                & (pl.col("segment_id") == "cart_abandoners")
            )
            & (pl.col("person_id") != "p_00007")
        )
        newcomer = audience.filter(pl.col("person_id") == "p_00010").with_columns(
            person_id=pl.lit("p_99999"), email=pl.lit("newcomer@example.com")
        )
        changed = pl.concat([changed, newcomer])
        third = sync(connection, destination, changed, "run-3", log=lambda _: None)
        assert fake.audience() == _expected(changed)
        assert third.totals()["added"] == newcomer.height
        assert (
            third.totals()["removed"]
            == 3 + audience.filter(pl.col("person_id") == "p_00007").height
        )
    logged = connection.execute(
        "select run_id, sum(added), sum(removed), sum(failed) from marts.sync_log "
        "where destination = ? group by 1 order by 1",
        [esp],
    ).fetchall()
    assert [r[0] for r in logged] == ["run-1", "run-2", "run-3"]


@pytest.mark.parametrize("esp", ESPS)
def test_faults_are_waited_out_and_no_member_is_sent_twice(esp: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    audience = _audience(200)
    connection = _warehouse(tmp_path)
    with _fakes() as fakes:
        fake = fakes[esp]
        fake.faults = deque([429, 500, "drop", 429])
        sync(connection, _destination(esp, fake), audience, "run-1", log=lambda _: None)
        assert fake.audience() == _expected(audience)
    statuses = [s for _, _, s in fake.log]
    assert statuses.count(429) == 2 and 500 in statuses
    sent: dict[str, int] = {}
    for _, body in fake.bodies:
        for email in _emails_in(body):
            sent[email] = sent.get(email, 0) + 1
    assert set(sent) == set(_expected(audience))
    assert max(sent.values()) == 1, "each member went out once"


def _emails_in(body: dict) -> list[str]:
    if "members" in body:
        return [m["email_address"] for m in body["members"]]
    if "attributes" in body and isinstance(body["attributes"], list):
        return [a["email"] for a in body["attributes"] if "email" in a]
    data = body.get("data")
    if isinstance(data, dict) and data.get("type") == "profile-bulk-import-job":
        return [p["attributes"]["email"] for p in data["attributes"]["profiles"]["data"]]
    return []


@pytest.mark.parametrize("esp", ESPS)
def test_a_sync_killed_after_its_second_batch_resumes_without_resending(esp: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    audience = _audience(260)
    connection = _warehouse(tmp_path)
    with _fakes() as fakes:
        fake = fakes[esp]
        destination = _destination(esp, fake, batch_size=40)
        calls = {"n": 0}
        original = destination.__class__.send

        def dying_after_two(self, batch):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt("the run worker is stopped")
            return original(self, batch)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(destination.__class__, "send", dying_after_two)
            with pytest.raises(KeyboardInterrupt):
                sync(connection, destination, audience, "run-1", log=lambda _: None)
        first_two = {e for _, body in fake.bodies for e in _emails_in(body)}
        assert len(first_two) == 80
        sync(connection, destination, audience, "run-2", log=lambda _: None)
        assert fake.audience() == _expected(audience)
    resent = [e for _, body in fake.bodies for e in _emails_in(body)]
    assert len(resent) == len(set(resent)), "no one the ESP acknowledged was sent again"


def test_refused_people_are_logged_with_the_esps_reason_and_tried_again(tmp_path) -> None:  # type: ignore[no-untyped-def]
    audience = _audience(20)
    connection = _warehouse(tmp_path)
    with _fakes() as fakes:
        fake = fakes["mailchimp"]
        fake.compliance.add("person3@example.com")
        report = sync(
            connection, _destination("mailchimp", fake), audience, "run-1", log=lambda _: None
        )
        assert (
            report.totals()["failed"]
            == audience.filter(pl.col("email") == "person3@example.com").height
        )
        reason = connection.execute(
            "select email, reason from marts.sync_errors where destination = 'mailchimp'"
        ).fetchall()
        assert reason[0][0] == "person3@example.com" and "compliance state" in reason[0][1]
        assert "person3@example.com" not in fake.audience()
        fake.compliance.clear()
        sync(connection, _destination("mailchimp", fake), audience, "run-2", log=lambda _: None)
        assert fake.audience() == _expected(audience)


def test_a_dry_run_reports_the_changes_and_sends_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    audience = _audience(30)
    connection = _warehouse(tmp_path)
    with _fakes() as fakes:
        fake = fakes["braze"]
        report = sync(
            connection,
            _destination("braze", fake),
            audience,
            "dry",
            dry_run=True,
            log=lambda _: None,
        )
        assert fake.log == [] and report.totals()["added"] == audience.height
        held = connection.execute("select count(*) from activation.sync_state").fetchone()
        assert held == (0,)
        assert connection.execute("select bool_and(dry_run) from marts.sync_log").fetchone() == (
            True,
        )


@pytest.mark.parametrize("esp", ESPS)
def test_a_refused_key_fails_clearly_naming_the_variable(esp: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    connection = _warehouse(tmp_path)
    with _fakes() as fakes:
        destination = _destination(esp, fakes[esp], api_key="wrong-key")
        with pytest.raises(dg.Failure, match=f"INBOXGRAPH_{esp.upper()}_API_KEY"):
            sync(connection, destination, _audience(5), "run-1", log=lambda _: None)


def test_the_klaviyo_calls_carry_the_revision_header(tmp_path) -> None:  # type: ignore[no-untyped-def]
    connection = _warehouse(tmp_path)
    with _fakes() as fakes:
        fake = fakes["klaviyo"]
        sync(connection, _destination("klaviyo", fake), _audience(10), "run-1", log=lambda _: None)
        assert fake.revisions and all(len(r) >= 10 for r in fake.revisions)


def test_fields_are_what_templates_need() -> None:
    assert FIELDS == (
        "first_name",
        "last_name",
        "top_category",
        "featured_products",
        "lifetime_value_tier",
    )


@pytest.mark.parametrize("esp", ESPS)
def test_suppressed_addresses_reach_the_esps_own_suppression_once_each(esp: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    audience = _audience(12)
    connection = _warehouse(tmp_path)
    leaving = audience.filter(pl.col("person_id") == "p_00003")["email"][0]
    never_synced = [f"gone{n}@example.com" for n in range(130)]  # more than a batch of each
    with _fakes() as fakes:
        fake = fakes[esp]
        destination = _destination(esp, fake)
        sync(connection, destination, audience, "run-1", log=lambda _: None)
        rest = audience.filter(pl.col("email") != leaving)
        suppressed = {leaving, *never_synced}
        report = sync(
            connection, destination, rest, "run-2", log=lambda _: None, suppressed=suppressed
        )
        assert report.suppressed == len(suppressed)
        assert fake.audience() == _expected(rest)
        if esp == "mailchimp":
            held = {m["email_address"]: m["status"] for m in fake.members.values()}
            assert all(held[e] == "unsubscribed" for e in suppressed)
        elif esp == "klaviyo":
            assert fake.suppressed >= suppressed
        else:
            assert all(fake.email_states[e] == "unsubscribed" for e in suppressed)
        sent = len(fake.bodies)
        again = sync(
            connection, destination, rest, "run-3", log=lambda _: None, suppressed=suppressed
        )
        assert again.suppressed == 0 and len(fake.bodies) == sent, "each address is pushed once"
        # Opted in again, then out again: pushed again.
        sync(
            connection, destination, rest, "run-4", log=lambda _: None, suppressed=set(never_synced)
        )
        later = sync(
            connection, destination, rest, "run-5", log=lambda _: None, suppressed=suppressed
        )
        assert later.suppressed == 1


@pytest.mark.parametrize("esp", ESPS)
def test_an_erasure_deletes_the_person_at_the_esp_and_nobody_else(esp: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from inboxgraph.privacy import Person, forget_at_destinations

    audience = _audience(30)
    connection = _warehouse(tmp_path)
    with _fakes() as fakes:
        fake = fakes[esp]
        destination = _destination(esp, fake)
        sync(connection, destination, audience, "run-1", log=lambda _: None)
        connection.close()
        # The identity map knows the person by another address than the one synced: the
        # address the sync recorded for the person id is deleted too. An ESP without its key
        # is left alone.
        person = Person()
        person.add("email", "renamed@example.com")
        person.add("person_id", "p_00003")
        logged: list[tuple[str, int]] = []
        deleted = forget_at_destinations(
            str(tmp_path / "warehouse.duckdb"),
            person,
            [destination, _destination(esp, fake, api_key="")],
            lambda name, n: logged.append((name, n)),
        )
        # Klaviyo answers a deletion request per address; the others count the users deleted.
        assert deleted == {esp: 2 if esp == "klaviyo" else 1}
        assert logged == [(esp, deleted[esp])]
        expected = _expected(audience)
        del expected["person3@example.com"]
        assert fake.audience() == expected
        if esp == "mailchimp":  # deleted permanently: never imported again
            assert "person3@example.com" in fake.compliance


def test_an_esp_that_fails_stops_the_erasure_before_it_touches_a_local_layer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from inboxgraph.privacy import forget
    from inboxgraph.resources.lake import LakeResource

    landing = tmp_path / "landing"
    day = landing / "web_events" / "2026-11-27"
    day.mkdir(parents=True)
    line = b'{"type": "identify", "userId": "u-1", "traits": {"email": "gone@example.com"}}\n'
    kept = line.replace(b"gone@", b"kept@").replace(b"u-1", b"u-2")
    (day / "events.jsonl").write_bytes(line + kept)
    arguments = {
        "email": "gone@example.com",
        "user_id": None,
        "landing": landing,
        "lake": LakeResource(url=str(tmp_path / "lake")),
        "warehouse": str(tmp_path / "warehouse.duckdb"),
        "exports": tmp_path / "exports",
        "shop_db_url": "",
    }
    with _fakes() as fakes:
        braze = fakes["braze"]
        braze.users["u-1"] = {"email": "gone@example.com", "inboxgraph_segments": {"s"}}
        destination = _destination("braze", braze, max_attempts=2)
        braze.down = True
        with pytest.raises(dg.Failure, match="Braze answered 503"):
            forget(**arguments, destinations=[destination])
        assert (day / "events.jsonl").read_bytes().count(b"@example.com") == 2
        assert "u-1" in braze.users
        # Run again once Braze answers: the erasure completes, at the ESP and in the landing.
        braze.down = False
        _, receipt = forget(**arguments, destinations=[destination])
    assert receipt.destinations == {"braze": 1} and "u-1" not in braze.users
    assert (day / "events.jsonl").read_bytes() == kept


def test_forget_on_the_command_line_erases_at_the_esps_whose_keys_are_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import inboxgraph_cli, outside_environment

    with _fakes() as fakes:
        braze = fakes["braze"]
        braze.users["u-1"] = {"email": "gone@example.com", "inboxgraph_segments": {"s"}}
        env = outside_environment(
            INBOXGRAPH_HOME=str(tmp_path / "home"),
            INBOXGRAPH_BRAZE_API_KEY=braze.api_key,
            INBOXGRAPH_BRAZE_API_URL=braze.url,
        )
        braze.faults.extend([401])
        refused = inboxgraph_cli("forget", "--email", "gone@example.com", env=env)
        assert refused.returncode == 1, refused.stderr
        assert "Braze refused the API key" in refused.stderr
        assert "INBOXGRAPH_BRAZE_API_KEY" in refused.stderr and "run it again" in refused.stderr
        assert "u-1" in braze.users
        done = inboxgraph_cli("forget", "--email", "gone@example.com", env=env)
        assert done.returncode == 0, done.stderr
        assert "braze" in done.stdout and "u-1" not in braze.users
