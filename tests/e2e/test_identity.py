"""Steering identity through Dagster: the health gate (a bad batch that merges 5% of the people
stops every export until a run accepts the change) and the duplicate suggestions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from inboxgraph.assets.activation import activation_assets
from inboxgraph.runner import STABILITY_CHECK, RunSummary, prepare_instance, run_pipeline
from inboxgraph.settings import Paths
from tests.conftest import inboxgraph_cli, outside_environment
from tests.warehouse.scenario import Landing, query

pytestmark = pytest.mark.e2e

AS_OF = datetime(2026, 11, 5)
EXPORTS = {key for assets_def in activation_assets for key in assets_def.keys}


def _run(paths: Paths, accept: bool = False) -> tuple[RunSummary, set[dg.AssetKey], dict]:
    summary = run_pipeline(paths, as_of=AS_OF, log=lambda _: None, accept_identity_changes=accept)
    instance = prepare_instance(paths)
    refresh = summary.run_ids[-1]
    materialized = {
        record.event_log_entry.dagster_event.asset_key
        for record in instance.get_records_for_run(
            refresh, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
    }
    (stability,) = [
        record.event_log_entry.dagster_event.event_specific_data
        for record in instance.get_records_for_run(
            refresh, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        if record.event_log_entry.dagster_event.event_specific_data.check_name
        == "identity_stability"
    ]
    return summary, materialized, stability


def test_a_batch_that_merges_many_people_blocks_exports_until_accepted(
    platform_home: Paths,
) -> None:
    paths = platform_home
    landing = Landing()
    for number in range(1, 41):
        landing.customer(number, f"c{number}@example.com")
    landing.identify(datetime(2026, 11, 1, 9), "anon-1", "u-1", email="c1@example.com")
    landing.esp_event("c1@example.com", "delivered", datetime(2026, 11, 1, 9))
    landing.write(Path(paths.landing_url))
    summary, materialized, stability = _run(paths)
    assert summary.succeeded, summary
    assert stability.passed and materialized >= EXPORTS
    assert stability.description == "no accepted identity map yet: this one is accepted"

    # A tracker bug: one anonymous id per pair of strangers, each typing their own address.
    bad = Landing()
    for first in (11, 21):
        at = datetime(2026, 11, 2, first % 24)
        bad.identify(at, f"bad-{first}", None, email=f"c{first}@example.com")
        bad.identify(at, f"bad-{first}", None, email=f"c{first + 1}@example.com")
    bad.write(Path(paths.landing_url))
    summary, materialized, stability = _run(paths)
    assert STABILITY_CHECK in summary.checks_failed
    assert not stability.passed
    assert stability.metadata["changed_people"].value == 2
    assert stability.metadata["merges"].value == 2
    assert stability.metadata["changed_share"].value > 0.02
    assert "exports wait until a run accepts the change" in stability.description
    explained = stability.metadata["largest_merges_explained"].value
    assert "rule identify_email (web_events" in explained
    assert "@example.com" in explained and "c11@example.com" not in explained, "masked"
    assert dg.AssetKey(["marts", "identity_map"]) in materialized
    assert not EXPORTS & materialized, "no export while the change waits"

    # (The next run would wait too: tests/test_identity_health.py.)
    summary, materialized, stability = _run(paths, accept=True)
    assert stability.passed and stability.metadata["accepted_by_run"].value is True
    assert summary.succeeded, summary
    assert materialized >= EXPORTS


FIRST_NAMES = ["Ava", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jon", "Kai"]
LAST_NAMES = ["Adler", "Brook", "Costa", "Dietz", "Evans", "Fox", "Gray", "Hale", "Ito"]


def test_probable_duplicates_are_suggested_for_review_never_merged(platform_home: Paths) -> None:
    paths = platform_home
    landing = Landing()
    at = datetime(2026, 11, 1, 9)
    for number, (first, last) in enumerate((f, last) for f in FIRST_NAMES for last in LAST_NAMES):
        city = ("Leeds", "York", "Bath")[number % 3]
        email = f"{first}.{last}@example.com".lower()
        landing.contact(f"hs-{number}", email, False, at, firstname=first, lastname=last, city=city)
    # The same woman twice, her address typo'd; two John Smiths in different cities.
    for contact_id, email, first, last, city in (
        ("hs-jane", "jane.doe@example.com", "Jane", "Doe", "Leeds"),
        ("hs-jane2", "jane.doe@exmaple.com", "Jane", "Doe", "Leeds"),
        ("hs-john", "john.smith@example.com", "John", "Smith", "Leeds"),
        ("hs-john2", "jsmith@example.net", "John", "Smith", "York"),
    ):
        landing.contact(contact_id, email, False, at, firstname=first, lastname=last, city=city)
    landing.esp_event("jane.doe@example.com", "delivered", at)
    landing.identify(at, "anon-1", "u-1", email="jane.doe@example.com")
    landing.write(Path(paths.landing_url))
    assert run_pipeline(paths, as_of=AS_OF, log=lambda _: None).succeeded

    env = outside_environment(INBOXGRAPH_HOME=paths.home)
    ran = inboxgraph_cli("identity", "suggest", env=env)
    assert ran.returncode == 0, ran.stderr
    pairs = query(
        paths,
        "select left_email, right_email, match_probability, accept_with "
        "from marts.identity_suggestions",
    )
    emails = {frozenset(pair[:2]) for pair in pairs}
    jane = frozenset({"jane.doe@example.com", "jane.doe@exmaple.com"})
    assert jane in emails
    assert frozenset({"john.smith@example.com", "jsmith@example.net"}) not in emails
    assert "jane.doe@exmaple.com" in ran.stdout and "probable duplicates" in ran.stdout
    # Nothing was merged: suggestions wait for a person to accept them.
    people = query(
        paths,
        "select count(distinct person_id) from marts.identity_map "
        "where identifier_value in ('jane.doe@example.com', 'jane.doe@exmaple.com')",
    )
    assert people == [(2,)]
