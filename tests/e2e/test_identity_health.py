"""The identity health gate, through Dagster: a bad batch that merges 5% of the people stops
every export until a run accepts the change."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest

from inboxgraph.assets.activation import activation_assets
from inboxgraph.runner import STABILITY_CHECK, RunSummary, prepare_instance, run_pipeline
from inboxgraph.settings import Paths
from tests.warehouse.scenario import Landing

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

    # Still waiting on the next run: the change is measured against what was last accepted.
    summary, materialized, stability = _run(paths)
    assert not stability.passed and not EXPORTS & materialized

    summary, materialized, stability = _run(paths, accept=True)
    assert stability.passed and stability.metadata["accepted_by_run"].value is True
    assert summary.succeeded, summary
    assert materialized >= EXPORTS
