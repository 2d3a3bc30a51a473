"""A CRM down does not stop the refresh: with HubSpot's API unreachable and Salesforce's up,
`inboxgraph run` pulls Salesforce, fails the HubSpot pull (its own step, named in the summary),
builds the profiles from every other source and the last HubSpot pages saved, and the alert
sensor reports the failed pull exactly once."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from inboxgraph.alerts import AlertWebhook
from inboxgraph.runner import prepare_instance, run_pipeline
from inboxgraph.sensors import alerts_sensor
from tests.conftest import generate, home_environment
from tests.e2e.pipeline import AS_OF
from tests.quality.receiver import webhook_receiver
from tests.sources.fake_salesforce import FakeSalesforce

pytestmark = pytest.mark.e2e

T0 = 1_764_000_000_000


def _unreachable_url() -> str:
    """A local port nothing listens on: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_hubspot_down_leaves_the_refresh_going_and_alerts_once(tmp_path: Path) -> None:
    fake = FakeSalesforce(batch_size=50)
    for i in range(30):
        fake.put(
            "Contact",
            f"003{900000 + i:012d}AAA",
            T0 + i * 60_000,
            Email=f"sf.only{i}@example.com",
            FirstName="Sf",
            LastName=f"Only{i}",
        )
    with home_environment(tmp_path) as paths, fake.serve():
        generate(Path(paths.landing_url), people=200, days=30)
        os.environ.update(
            INBOXGRAPH_HUBSPOT_TOKEN="pat-na1-test",
            INBOXGRAPH_HUBSPOT_API_URL=_unreachable_url(),
            INBOXGRAPH_SALESFORCE_INSTANCE_URL=fake.url,
            INBOXGRAPH_SALESFORCE_TOKEN=fake.token,
        )
        summary = run_pipeline(paths, as_of=AS_OF, log=lambda _: None)

        assert not summary.succeeded
        assert list(summary.failed_steps) == ["landing__hubspot_contacts"]
        assert "HubSpot" in summary.failed_steps["landing__hubspot_contacts"]
        instance = prepare_instance(paths)
        status = {
            run.job_name: run.status
            for run in instance.get_runs()
            if run.job_name in ("pull_crm", "refresh_warehouse")
        }
        assert status == {
            "pull_crm": dg.DagsterRunStatus.FAILURE,
            "refresh_warehouse": dg.DagsterRunStatus.SUCCESS,
        }
        with duckdb.connect(paths.warehouse, read_only=True) as con:
            # The profiles are built, from the HubSpot pages saved before and from the pull of
            # Salesforce that did succeed.
            assert con.sql("select count(*) from marts.customer_profiles").fetchone()[0] > 100
            assert con.sql("select count(*) from staging.stg_hubspot__contacts").fetchone()[0] > 0
            pulled = con.sql(
                "select count(*) from marts.identity_map where identifier_type = 'salesforce_id' "
                "and identifier_value like '003000000900%'"
            ).fetchone()[0]
            assert pulled == 30

        with webhook_receiver() as (url, received):
            cursor = None
            for _ in range(2):
                context = dg.build_sensor_context(
                    instance=instance,
                    cursor=cursor,
                    resources={"alert_webhook": AlertWebhook(url=url)},
                )
                alerts_sensor(context)
                cursor = context.cursor
        runs = [a["inboxgraph"] for a in received if a["inboxgraph"]["kind"] == "run"]
        assert [(a["subject"], a["state"]) for a in runs] == [("pull_crm", "FAIL")]
