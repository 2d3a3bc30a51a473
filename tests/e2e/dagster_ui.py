"""The Dagster UI's own processes (`dagster dev`: webserver, daemon, code servers) on a test
home, driven through the GraphQL API the UI uses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import requests

from tests.conftest import KEPT_VARIABLES, REPOSITORY_ROOT, stop_process_group

BIN = Path(sys.executable).parent
LOCATION = {"repositoryLocationName": "inboxgraph", "repositoryName": "__repository__"}
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

LAUNCH_RUN = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}
"""


def ui_environment(home: Path, **overrides: str) -> dict[str, str]:
    """The environment `dagster dev` has in the repository root: the committed `.env`, with
    the home pointed at ``home`` and no variable the test process set for itself."""
    env = {
        name: value
        for name, value in os.environ.items()
        if (not name.startswith("INBOXGRAPH_") or name in KEPT_VARIABLES)
        and name not in {"DAGSTER_HOME"}
        and name not in {"KAFKA_BOOTSTRAP_SERVERS"}
    }
    for line in (REPOSITORY_ROOT / ".env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    env.update({"INBOXGRAPH_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")})
    env.update(overrides)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DagsterUI:
    """`dagster dev` as the README starts it, with its log kept for failure messages."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log_path = env, log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DagsterUI:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", str(REPOSITORY_ROOT / "workspace.yaml")]
            + ["-h", "127.0.0.1", "-p", str(self.port)],
            cwd=self.log_path.parent,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 240
        while True:
            try:
                if requests.get(f"{self.url}/server_info", timeout=2).ok and self._loaded():
                    return self
            except requests.ConnectionError:
                pass
            assert self.process.poll() is None, f"dagster dev exited\n{self.tail()}"
            assert time.monotonic() < deadline, f"the UI did not come up\n{self.tail()}"
            time.sleep(1)

    def __exit__(self, *_: object) -> None:
        stop_process_group(self.process, timeout=30)
        self._log.close()

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def _loaded(self) -> bool:
        status = self.query(
            "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus "
            "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
        )
        (entry,) = status["workspaceOrError"]["locationEntries"]
        error = entry["locationOrLoadError"]
        assert error is None or error["__typename"] != "PythonError", error["message"]
        return entry["loadStatus"] == "LOADED" and error is not None

    def query(self, text: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": text, "variables": variables or {}}, timeout=120
        )
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def launch_run(
        self,
        job: str,
        assets: list[list[str]] | None = None,
        tags: dict[str, str] | None = None,
        run_config: dict[str, Any] | None = None,
    ) -> str:
        """Launch as the UI does: "Materialize" (an asset selection of the implicit asset job)
        or the Jobs page's launchpad; returns the run id."""
        selector: dict[str, Any] = {**LOCATION, "jobName": job}
        if assets is not None:
            selector["assetSelection"] = [{"path": path} for path in assets]
            selector["assetCheckSelection"] = []
        params = {
            "selector": selector,
            "mode": "default",
            "runConfigData": run_config or {},
            "executionMetadata": {
                "tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]
            },
        }
        result = self.query(LAUNCH_RUN, {"params": params})["launchRun"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return result["run"]["runId"]

    def launch_backfill(self, assets: list[list[str]]) -> str:
        """ "Materialize all" over every partition: the UI's asset backfill."""
        params = {
            "assetSelection": [{"path": path} for path in assets],
            "allPartitions": True,
            "fromFailure": False,
        }
        result = self.query(LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return result["backfillId"]

    def wait_for_run(self, run_id: str, timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while True:
            run = self.query(
                "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                {"id": run_id},
            )["runOrError"]
            if run["status"] in FINISHED:
                return run["status"]
            assert time.monotonic() < deadline, f"run {run_id} is {run['status']}\n{self.tail()}"
            time.sleep(1)

    def wait_for_backfill(self, backfill_id: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while True:
            backfill = self.query(
                "query($id: String!) { partitionBackfillOrError(backfillId: $id) "
                "{ ... on PartitionBackfill { status } } }",
                {"id": backfill_id},
            )["partitionBackfillOrError"]
            if backfill["status"] not in ("REQUESTED", "CANCELING"):
                return backfill["status"]
            assert time.monotonic() < deadline, f"backfill {backfill_id}\n{self.tail()}"
            time.sleep(2)

    def wait_for_tagged_runs(
        self, instance: dg.DagsterInstance, tags: dict[str, str], timeout: float = 600
    ) -> list[dg.DagsterRun]:
        """Runs carrying ``tags`` (a sensor's or a schedule's), once one exists and all have
        finished."""
        deadline = time.monotonic() + timeout
        while True:
            runs = instance.get_runs(dg.RunsFilter(tags=tags))
            if runs and all(run.status.value in FINISHED for run in runs):
                return runs
            assert time.monotonic() < deadline, f"no finished run tagged {tags}\n{self.tail()}"
            time.sleep(2)
