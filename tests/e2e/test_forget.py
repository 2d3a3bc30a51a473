"""GDPR erasure across every layer, and a re-run that must not bring the person back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from inboxgraph.runner import RunSummary, prepare_instance, run_pipeline
from inboxgraph.settings import Paths
from tests.e2e.pipeline import AS_OF, pipeline_home, rerun
from tests.e2e.search import occurrences

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Paths, RunSummary]]:
    with pipeline_home(tmp_path_factory.mktemp("forget"), people=300) as result:
        yield result


def _sql(paths: Paths, query: str, *params: object) -> list[tuple]:
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        return con.execute(query, list(params)).fetchall()


def _layers(paths: Paths) -> list[Path]:
    return [
        Path(paths.landing_url),
        Path(paths.lake_url),
        Path(paths.warehouse),
        Path(paths.exports),
    ]


def _person(paths: Paths) -> tuple[str, list[str], dict[str, str]]:
    """A subscribed person in a segment (so in the exports), seen in as many sources as
    possible: their email, the values to search every layer for, and their numeric ids."""
    person_id, email = _sql(
        paths,
        """
        select m.person_id, p.email
        from marts.identity_map m
        join marts.customer_profiles p using (person_id)
        join marts.segment_memberships s using (person_id)
        group by all
        order by count(distinct m.identifier_type) desc, count(*) desc, m.person_id
        limit 1""",
    )[0]
    identifiers = _sql(
        paths,
        "select identifier_type, identifier_value from marts.identity_map where person_id = ?",
        person_id,
    )
    kinds = {kind for kind, _ in identifiers}
    assert {"email", "user_id", "anonymous_id"} <= kinds
    needles = [
        value for kind, value in identifiers if kind in ("email", "user_id", "anonymous_id")
    ] + [person_id]
    numeric = {kind: value for kind, value in identifiers if kind in ("hubspot_id", "customer_id")}
    assert occurrences(_layers(paths), needles), "the person is everywhere before"
    return email, needles, numeric


def test_forget_erases_every_layer_and_a_rerun_does_not_bring_them_back(
    pipeline: tuple[Paths, RunSummary], tmp_path: Path
) -> None:
    paths, _ = pipeline
    email, needles, numeric = _person(paths)
    original = tmp_path / "landing-copy"
    shutil.copytree(paths.landing_url, original)

    result = subprocess.run(
        [sys.executable, "-m", "inboxgraph.cli", "forget", "--email", email],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert email not in result.stdout + result.stderr, "addresses are masked in output"
    assert "records removed" in result.stdout

    assert occurrences(_layers(paths), needles) == []
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        for kind, value in numeric.items():
            assert con.execute(
                "select count(*) from marts.identity_map where "
                "identifier_type = ? and identifier_value = ?",
                [kind, value],
            ).fetchone() == (0,)
        receipt = con.execute(
            "select details, rows_out from marts.audit_log where event_type = 'erasure'"
        ).fetchall()
    assert len(receipt) == 1
    details = json.loads(receipt[0][0])
    assert details["rows_removed"] == receipt[0][1] > 0
    assert details["tables"] and details["files"] and details["tombstones"]
    assert email not in receipt[0][0]

    # The sources deliver the same files again (new files, same content): the re-run lands
    # every date again and must not bring the person back.
    shutil.rmtree(paths.landing_url)
    shutil.copytree(original, paths.landing_url, copy_function=shutil.copy)
    summary = rerun(paths)
    assert summary.lake["web_events"]["landed"] > 0
    instance = prepare_instance(paths)
    records = instance.fetch_materializations(
        dg.AssetKey(["lake", "web_events"]), limit=1000
    ).records
    rerun_id = records[0].run_id
    erased = [
        record.asset_materialization.metadata["rows_erased"].value
        for record in records
        if record.run_id == rerun_id and "rows_erased" in record.asset_materialization.metadata
    ]
    assert sum(erased) > 0, "the tombstones kept the person out of the lake"
    assert occurrences(_layers(paths)[1:], needles) == []
    assert _sql(
        paths, "select count(*) from marts.identity_map where identifier_value = ?", email
    ) == [(0,)]


def test_forget_killed_midway_then_run_again_completes_the_erasure(
    pipeline: tuple[Paths, RunSummary], tmp_path: Path
) -> None:
    paths, _ = pipeline
    email, needles, _ = _person(paths)
    receipts = "select count(*) from marts.audit_log where event_type = 'erasure'"
    (before,) = _sql(paths, receipts)

    # SIGKILL once the landing zone is scrubbed: the lake, the exports and the warehouse
    # still hold the person.
    log = tmp_path / "forget.log"
    command = [sys.executable, "-m", "inboxgraph.cli", "forget", "--email", email]
    with log.open("wb") as out:
        killed = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "landing" not in log.read_text():
        assert killed.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.01)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert "warehouse" not in log.read_text(), "killed before the warehouse was scrubbed"
    assert _sql(
        paths, "select count(*) from marts.identity_map where identifier_value = ?", email
    ) != [(0,)]
    assert occurrences(_layers(paths)[1:], needles), "the kill left the erasure unfinished"

    again = subprocess.run(command, capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stderr
    assert occurrences(_layers(paths), needles) == []
    assert _sql(paths, receipts) == [(before[0] + 1,)], "a receipt from the erasure that ended"

    # A full run afterwards (every landed date again, every model rebuilt) keeps them gone.
    summary = run_pipeline(paths, as_of=AS_OF, full_refresh=True, reingest=True, log=lambda _: None)
    assert summary.succeeded, summary
    assert occurrences(_layers(paths), needles) == []
