"""Identity overrides written with `inboxgraph identity split|link` hold on every run: the next
incremental one, a full refresh, and the same events landed again; the identity marts and the
profiles after the split, the merge and the replay equal a full refresh's."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from inboxgraph.settings import Paths
from tests.conftest import inboxgraph_cli, outside_environment
from tests.warehouse.scenario import Landing, land, person_of, query, run_dbt, write_lines

BUILD = ("build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test")
DAY = datetime(2026, 11, 1, 9)


def _resolve(paths: Paths, *args: str) -> None:
    window = land(paths)
    selected = ("+identity_links", "+identity_map", "+customer_profiles")
    run_dbt(paths, *BUILD, "--select", *selected, *args, *window)


def _outputs(paths: Paths) -> tuple[list[tuple], ...]:
    return (
        query(
            paths,
            "select * exclude (resolved_at) from intermediate.int_identity__components_resolved "
            "order by all",
        ),
        query(paths, "select * exclude (written_at) from marts.identity_links order by all"),
        query(paths, "select * from marts.identity_map order by all"),
        # The profiles, written only where they changed, equal a full refresh's.
        query(paths, "select * exclude (refreshed_at) from marts.customer_profiles order by all"),
    )


def _messages() -> Landing:
    landing = Landing()
    # Ann logs in; Bob, on his own device, types Ann's address into a newsletter form.
    landing.identify(DAY, "anon-ann", "ann", email="ann@example.com")
    landing.identify(DAY.replace(hour=10), "anon-bob", None, email="ann@example.com")
    landing.page(DAY.replace(hour=11), anonymous_id="anon-bob")
    # One customer with two accounts, an old and a new one.
    landing.identify(DAY.replace(hour=12), "anon-old", "u-old", email="old@example.com")
    landing.identify(DAY.replace(hour=13), "anon-new", "u-new", email="new@example.com")
    landing.esp_event("reader@example.com", "delivered", DAY)
    return landing


def _override(paths: Paths, *args: str) -> None:
    env = outside_environment(INBOXGRAPH_HOME=paths.home)
    ran = inboxgraph_cli("identity", *args, "--author", "qa", "--reason", "test case", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "wrote" in ran.stdout


def test_overrides_split_and_merge_people_on_every_kind_of_run(
    platform_home: Paths, identity_overrides: Path
) -> None:
    paths = platform_home
    landing = _messages()
    replay = list(landing.web)
    landing.write(Path(paths.landing_url))
    _resolve(paths)
    ann = person_of(paths, "user_id", "ann")
    assert person_of(paths, "anonymous_id", "anon-bob") == ann, "merged by the typed address"
    assert person_of(paths, "user_id", "u-old") != person_of(paths, "user_id", "u-new")

    _override(paths, "split", "email: Ann@Example.com", "anonymous_id:anon-bob")
    _override(paths, "link", "user_id:u-old", "user_id:u-new")
    _resolve(paths)

    def assert_overridden() -> None:
        assert person_of(paths, "user_id", "ann") == ann, "the anchor's side keeps its id"
        bob = person_of(paths, "anonymous_id", "anon-bob")
        assert bob not in (None, ann)
        assert person_of(paths, "email", "ann@example.com") == ann
        merged = person_of(paths, "user_id", "u-old")
        assert merged == person_of(paths, "user_id", "u-new")
        assert merged == person_of(paths, "email", "old@example.com")
        assert merged == person_of(paths, "anonymous_id", "anon-new")

    assert_overridden()
    links = query(
        paths,
        "select left_value, right_value, rule, source, applied, refused_by "
        "from marts.identity_links where 'anon-bob' in (left_value, right_value) "
        "or rule in ('override_link', 'never_link') order by all",
    )
    assert (
        "anon-bob",
        "ann@example.com",
        "identify_email",
        "web_events",
        False,
        "override: never_link",
    ) in links
    assert ("ann@example.com", "anon-bob", "never_link", "identity_overrides", True, None) in links
    assert ("u-old", "u-new", "override_link", "identity_overrides", True, None) in links
    bob = person_of(paths, "anonymous_id", "anon-bob")

    # The same events landed again (a replay, received on a later day), then a full refresh.
    write_lines(paths, "web_events", "2026-11-03", "replay.jsonl", replay)
    _resolve(paths)
    assert_overridden()
    replayed = _outputs(paths)
    _resolve(paths, "--full-refresh")
    assert _outputs(paths) == replayed
    assert person_of(paths, "anonymous_id", "anon-bob") == bob, "the new id is stable"

    # Without the overrides the observed links decide again.
    identity_overrides.write_text(identity_overrides.read_text().splitlines()[0] + "\n")
    _resolve(paths)
    assert person_of(paths, "anonymous_id", "anon-bob") == ann
    assert person_of(paths, "user_id", "u-old") != person_of(paths, "user_id", "u-new")
    assert not query(
        paths, "select * from marts.identity_links where source = 'identity_overrides'"
    )


def test_the_command_line_refuses_bad_and_contradicting_overrides(
    platform_home: Paths, identity_overrides: Path
) -> None:
    env = outside_environment(INBOXGRAPH_HOME=platform_home.home)

    def identity(*args: str):
        return inboxgraph_cli("identity", *args, "--reason", "test case", env=env)

    assert identity("split", "email:a@example.com", "user_id:u1").returncode == 0
    again = identity("split", "user_id:u1", "email:A@example.com ")
    assert again.returncode == 2
    assert "is already there" in again.stderr
    contradicting = identity("link", "email:a@example.com", "user_id:u1")
    assert contradicting.returncode == 2
    assert "contradicts it: remove that row" in contradicting.stderr
    unknown = identity("link", "phone:123", "user_id:u1")
    assert unknown.returncode == 2
    assert "'phone:123' is not an identifier" in unknown.stderr
    rows = identity_overrides.read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("never_link,email,a@example.com,user_id,u1,")
