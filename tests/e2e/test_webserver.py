"""The Dagster UI's GraphQL API shows the asset graph, its checks and freshness policies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from inboxgraph.dbt_project import REPOSITORY_ROOT
from inboxgraph.settings import Paths
from tests.conftest import stop_process_group

pytestmark = pytest.mark.e2e

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    hasAssetChecks
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
    internalFreshnessPolicy {
      __typename
      ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_ui_api_shows_lineage_checks_and_freshness(platform_home: Paths) -> None:
    port = _free_port()
    Path(platform_home.dagster_home).mkdir(parents=True, exist_ok=True)
    webserver = Path(sys.executable).parent / "dagster-webserver"
    process = subprocess.Popen(
        [
            str(webserver),
            "-w",
            str(REPOSITORY_ROOT / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPOSITORY_ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert process.poll() is None, "the webserver exited"
            assert time.monotonic() < deadline, "the webserver did not come up"
            time.sleep(1)
        response = requests.post(f"{url}/graphql", json={"query": QUERY}, timeout=60)
        response.raise_for_status()
        nodes = {"/".join(n["assetKey"]["path"]): n for n in response.json()["data"]["assetNodes"]}
    finally:
        stop_process_group(process, timeout=30)

    def deps(key: str) -> set[str]:
        return {"/".join(d["path"]) for d in nodes[key]["dependencyKeys"]}

    assert deps("lake/web_events") == {"sources/web_events"}
    assert deps("warehouse/stg_web__events") == {"lake/web_events"}
    assert "warehouse/int_identity__persons_assigned" in deps("marts/identity_map")
    assert "marts/customer_profiles" in deps("marts/segment_memberships")
    assert "marts/audience_members" in deps("activation/mailchimp_export")
    assert {n["groupName"] for n in nodes.values()} >= {
        "web",
        "crm",
        "shop",
        "identity",
        "profiles",
        "segments",
        "activation",
    }
    checks = {
        c["name"]: c["blocking"]
        for c in nodes["marts/customer_profiles"]["assetChecksOrError"]["checks"]
    }
    assert checks["soda_contract"] is True
    assert "unique_customer_profiles_person_id" in checks
    assert nodes["lake/web_events"]["hasAssetChecks"]
    policy = nodes["marts/customer_profiles"]["internalFreshnessPolicy"]
    assert policy["__typename"] == "TimeWindowFreshnessPolicy"
    assert (policy["failWindowSeconds"], policy["warnWindowSeconds"]) == (30 * 3600, 26 * 3600)
    assert nodes["sources/web_events"]["internalFreshnessPolicy"] is None
