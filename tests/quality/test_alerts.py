from __future__ import annotations

import sys
import time

import dagster as dg
import dagster._core.definitions.freshness_evaluator as evaluator
import pytest
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.freshness import FreshnessDaemon

from inboxgraph.alerts import AlertWebhook
from inboxgraph.sensors import alerts_sensor
from inboxgraph.settings import Paths
from tests.quality.receiver import webhook_receiver

ASSET = dg.AssetKey(["lake", "enrichment"])


def _evaluate_freshness(instance: dg.DagsterInstance) -> None:
    origin = LoadableTargetOrigin(
        executable_path=sys.executable, module_name="inboxgraph.definitions"
    )
    target = InProcessTestWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin))
    with WorkspaceProcessContext(instance, target) as workspace:
        list(FreshnessDaemon().run_iteration(workspace))


def _tick(instance: dg.DagsterInstance, url: str, cursor: str | None) -> str | None:
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"alert_webhook": AlertWebhook(url=url)}
    )
    alerts_sensor(context)
    return context.cursor


def test_a_stale_asset_sends_exactly_one_freshness_alert(
    platform_home: Paths,
    monkeypatch: pytest.MonkeyPatch,
    event_log_instance: dg.DagsterInstance,
) -> None:
    instance = event_log_instance
    with webhook_receiver() as (url, received):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=ASSET))
        _evaluate_freshness(instance)
        cursor = _tick(instance, url, None)
        assert received == [], "a fresh asset raises no alert"

        later = time.time() + 31 * 3600
        monkeypatch.setattr(evaluator, "get_current_timestamp", lambda: later)
        _evaluate_freshness(instance)
        cursor = _tick(instance, url, cursor)
        _evaluate_freshness(instance)
        _tick(instance, url, cursor)

        assert len(received) == 1
        alert = received[0]["inboxgraph"]
        assert (alert["kind"], alert["subject"], alert["state"]) == (
            "freshness",
            "lake/enrichment",
            "FAIL",
        )
        assert "lake/enrichment" in received[0]["text"]
        assert received[0]["blocks"], "Slack-compatible blocks"


def test_a_failed_check_and_a_failed_run_alert_once_each(
    platform_home: Paths, event_log_instance: dg.DagsterInstance
) -> None:
    @dg.asset
    def numbers() -> int:
        return 1

    @dg.asset_check(asset=numbers)
    def never_negative() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=False, metadata={"failed_checks": ["value.min"]})

    @dg.asset
    def broken() -> None:
        raise RuntimeError("source unreachable")

    instance = event_log_instance
    with webhook_receiver() as (url, received):
        dg.materialize([numbers], instance=instance, raise_on_error=False)
        dg.materialize(
            [numbers, never_negative], instance=instance, raise_on_error=False, selection=[numbers]
        )
        dg.materialize([broken], instance=instance, raise_on_error=False)
        cursor = _tick(instance, url, None)
        _tick(instance, url, cursor)
        kinds = sorted((r["inboxgraph"]["kind"], r["inboxgraph"]["state"]) for r in received)
        assert kinds == [("check", "FAIL"), ("run", "FAIL")]
        check = next(r for r in received if r["inboxgraph"]["kind"] == "check")
        assert check["inboxgraph"]["subject"] == "numbers:never_negative"
        assert "value.min" in check["inboxgraph"]["detail"]


def test_an_unreachable_webhook_keeps_the_alert_for_the_next_tick(
    platform_home: Paths, event_log_instance: dg.DagsterInstance
) -> None:
    @dg.asset
    def broken_again() -> None:
        raise RuntimeError("boom")

    instance = event_log_instance
    dg.materialize([broken_again], instance=instance, raise_on_error=False)
    cursor = _tick(instance, "http://127.0.0.1:9/unreachable", None)
    with webhook_receiver() as (url, received):
        _tick(instance, url, cursor)
    assert [r["inboxgraph"]["kind"] for r in received] == ["run"]
