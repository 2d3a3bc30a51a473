"""dbt as dagster-dbt runs it here: the version it is asked for, and its events on their way to
Dagster with each model's metadata."""

import json
import shutil
import subprocess
import sys
import time
from dataclasses import InitVar, dataclass
from importlib.metadata import version
from typing import Any

import dagster as dg

from inboxgraph.dbt_project import (
    KEPT_INVOCATIONS,
    TABLE_METADATA_PREFIX,
    build_events,
    dbt_executable,
    invocation_dir,
    target_dir,
)


def test_the_version_is_answered_without_starting_dbt() -> None:
    """dagster-dbt asks for the version before every run, and reads the first x.y.z of the
    answer: the dbt beside the interpreter answers from the packages' metadata, without
    importing dbt."""
    asked = subprocess.run(
        [dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert asked.splitlines()[1] == f"  - installed: {version('dbt-core')}"
    assert f"duckdb: {version('dbt-duckdb')}" in asked
    script = (
        "import sys; sys.argv = ['inboxgraph-dbt', '--version']; "
        "from inboxgraph.dbt_child import main; main(); "
        "print(sorted(m for m in sys.modules if m == 'dbt' or m.startswith('dbt.')))"
    )
    imported = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    assert imported == "[]"


def test_only_the_newest_invocations_of_a_kind_keep_their_target_directories() -> None:
    """Each build writes its artifacts into a directory of its own: a home's runs keep the
    newest few, whatever other kinds of invocation left."""
    other = invocation_dir("test_other_kind")
    made = []
    try:
        for n in range(KEPT_INVOCATIONS + 3):
            made.append(invocation_dir("test_kind", f"run{n:04d}-abcdef"))
            (made[-1] / "run_results.json").write_text("{}")
            time.sleep(0.02)  # file times tick in milliseconds
        kept = sorted(target_dir().glob("test_kind-*"), key=lambda p: p.stat().st_mtime)
        assert kept == made[-KEPT_INVOCATIONS:]
        assert kept[-1].name.startswith(f"test_kind-run{KEPT_INVOCATIONS + 2:04d}-")
        assert other.is_dir()
    finally:
        for path in [other, *made]:
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class Message:
    """A dbt log line as dagster-dbt reads it (a dataclass whose event history is given when
    it is made), converted to the Output dagster-dbt would yield for it."""

    raw_event: dict[str, Any]
    event_history_metadata: InitVar[dict[str, Any]]

    def __post_init__(self, event_history_metadata: dict[str, Any]) -> None:
        self.history = event_history_metadata

    @property
    def is_result_event(self) -> bool:
        return self.raw_event["info"]["name"] == "LogModelResult"

    def to_default_asset_events(self, **_: Any) -> list[dg.Output]:
        if not self.is_result_event:
            return []
        unique_id = self.raw_event["data"]["node_info"]["unique_id"]
        metadata = {"unique_id": unique_id, "history": json.dumps(self.history)}
        return [dg.Output(None, output_name=unique_id.split(".")[-1], metadata=metadata)]


def _message(name: str, unique_id: str, msg: str = "") -> Message:
    raw = {"info": {"name": name, "msg": msg}, "data": {"node_info": {"unique_id": unique_id}}}
    return Message(raw, {})


class Invocation:
    manifest: dict = {}
    dagster_dbt_translator = None
    context = None
    target_path = None
    project = None

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages

    def stream_raw_events(self) -> list[Message]:
        return self.messages


def _logged(unique_id: str, row_count: int | None) -> Message:
    metadata = {
        "columns": {"person_id": {"data_type": "VARCHAR"}},
        "parents": {'"w"."lake"."web"': {"columns": {"id": {"data_type": "VARCHAR"}}}},
        "row_count": row_count,
    }
    return _message("JinjaLogInfo", unique_id, TABLE_METADATA_PREFIX + json.dumps(metadata))


def _events(with_column_lineage: bool) -> list[dg.Output]:
    messages = [
        _logged("model.p.people", 5),  # before the model's own post-hook deleted rows
        _logged("model.p.people", 3),  # after it: the last line is the one kept
        _message("LogModelResult", "model.p.people"),
        _logged("model.p.people_view", None),
        _message("LogModelResult", "model.p.people_view"),
        _message("JinjaLogInfo", "model.p.people", "a line of the model's own"),
    ]
    return list(build_events(Invocation(messages), with_column_lineage))  # type: ignore[arg-type]


def test_each_model_gets_its_own_logged_row_count_and_columns() -> None:
    table, view = _events(False)
    assert table.metadata["dagster/row_count"].value == 3
    assert json.loads(table.metadata["history"].value) == {
        "columns": {"person_id": {"data_type": "VARCHAR"}}
    }, "without lineage, dagster-dbt gets no parents to work it out from"
    assert "dagster/row_count" not in view.metadata


def test_the_parents_columns_go_along_when_lineage_is_wanted() -> None:
    table, _ = _events(True)
    assert "parents" in json.loads(table.metadata["history"].value)
