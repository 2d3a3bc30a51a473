"""A refresh rebuilds only the dbt assets whose inputs changed since their last build, as
Dagster's records tell (inboxgraph.rebuild): nothing when nothing changed, what reads a source
when it changed, what is evaluated at the as-of when it moved, what an erasure touched."""

from __future__ import annotations

import contextlib
import gzip
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from inboxgraph.assets.warehouse import warehouse_dbt_models
from inboxgraph.rebuild import UNCHANGED, as_of_models, macros_digest, node_code_version
from inboxgraph.runner import RunSummary, prepare_instance, run_pipeline
from inboxgraph.settings import Paths
from tests.e2e.pipeline import AS_OF, pipeline_home

WEB_PARSE = dg.AssetKey(["warehouse", "int_web__events_parsed"])
SHOP_CUSTOMERS = dg.AssetKey(["warehouse", "stg_shop__customers"])
PROFILES = dg.AssetKey(["marts", "customer_profiles"])
MEMBERSHIPS = dg.AssetKey(["marts", "segment_memberships"])


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Paths]:
    with pipeline_home(tmp_path_factory.mktemp("rebuild"), people=200, days=20) as (paths, _):
        yield paths


def _run(paths: Paths, as_of: datetime = AS_OF, **options: object) -> tuple[RunSummary, set]:
    """A run of the graph, and the dbt assets its refresh materialized."""
    summary = run_pipeline(paths, as_of=as_of, log=lambda _: None, **options)
    assert summary.succeeded, summary
    instance = prepare_instance(paths)
    run_id = summary.run_ids[-1]
    built = set()
    for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = record.asset_materialization
        metadata = materialization.metadata if materialization else {}
        if "unique_id" in metadata and UNCHANGED not in metadata:  # a dbt asset, rebuilt
            built.add(record.asset_key)
    return summary, built


def _sql(paths: Paths, query: str) -> list[tuple]:
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        return con.sql(query).fetchall()


def test_a_run_with_nothing_new_rebuilds_no_model(home: Paths) -> None:
    profiles = _sql(home, "select * exclude (refreshed_at) from marts.customer_profiles order by 1")
    summary, built = _run(home)
    assert built == set()
    # Each is confirmed instead (so the checks, exports and audit after it run as usual).
    assert summary.unchanged == len(warehouse_dbt_models.keys)
    assert (
        _sql(home, "select * exclude (refreshed_at) from marts.customer_profiles order by 1")
        == profiles
    )


def test_a_new_shop_customer_rebuilds_what_reads_the_shop_only(home: Paths) -> None:
    now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(Path(home.landing_url) / "shop.db") as shop:
        shop.execute(
            "insert into customers (customer_id, email, first_name, last_name, created_at, "
            "updated_at) values (990001, 'rebuild.test@example.com', 'Re', 'Build', ?, ?)",
            (now, now),
        )
    before = dict(_sql(home, "select person_id, refreshed_at from marts.customer_profiles"))
    _, built = _run(home)
    assert {SHOP_CUSTOMERS, PROFILES} <= built
    assert WEB_PARSE not in built, "no web event landed"
    assert _sql(
        home,
        "select count(*) from marts.customer_profiles where email = 'rebuild.test@example.com'",
    ) == [(1,)]
    # The profiles are rebuilt, but only the new customer's row is written.
    after = dict(_sql(home, "select person_id, refreshed_at from marts.customer_profiles"))
    rewritten = {person for person, at in after.items() if before.get(person) != at}
    assert _sql(
        home,
        "select person_id from marts.customer_profiles where email = 'rebuild.test@example.com'",
    ) == [(rewritten.pop(),)]
    assert not rewritten
    # Nothing new again: nothing rebuilt.
    assert _run(home)[1] == set()


def test_a_new_as_of_rebuilds_what_is_evaluated_at_it(home: Paths) -> None:
    later = AS_OF + timedelta(days=3)
    _, built = _run(home, as_of=later)
    assert MEMBERSHIPS in built
    assert {WEB_PARSE, SHOP_CUSTOMERS}.isdisjoint(built)
    assert _sql(home, "select distinct as_of from marts.segment_memberships") in ([], [(later,)])
    memberships = _sql(home, "select * from marts.segment_memberships order by all")
    segments = _sql(home, "select * from marts.segments order by all")
    # Equal to a full refresh at that as-of.
    _, built = _run(home, as_of=later, full_refresh=True)
    assert MEMBERSHIPS in built and WEB_PARSE in built
    assert _sql(home, "select * from marts.segment_memberships order by all") == memberships
    assert _sql(home, "select * from marts.segments order by all") == segments


MARTS = (
    "select * exclude (refreshed_at) from marts.customer_profiles order by all",
    "select * from marts.identity_map order by all",
    "select * from marts.segment_memberships order by all",
)


def test_a_late_file_for_a_held_day_gives_the_marts_of_a_full_refresh(home: Paths) -> None:
    days = sorted((Path(home.landing_url) / "web_events").iterdir())
    held = days[len(days) // 2]
    messages = []
    with gzip.open(next(held.glob("*.jsonl.gz")), "rt") as lines:
        for line in lines:  # the generator writes some bad lines on purpose: not those
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if isinstance(message, dict) and message.get("type") in ("track", "page"):
                    messages.append(message)
    messages = messages[:40]
    assert len(messages) == 40
    for n, message in enumerate(messages):
        message["messageId"] = f"late-{n}"
        message["anonymousId"] = f"late-visitor-{n % 4}"
    (held / "late.jsonl").write_text("".join(json.dumps(m) + "\n" for m in messages))
    summary, built = _run(home)
    assert {WEB_PARSE, PROFILES, MEMBERSHIPS} <= built
    # Dagster names the one day landed again to dbt as the event models' window.
    logged = [entry.user_message for entry in prepare_instance(home).all_logs(summary.run_ids[-1])]
    assert any(f"received dates to read: ['{held.name}']" in line for line in logged), logged
    assert _sql(
        home,
        "select count(*) from marts.identity_map where identifier_value like 'late-visitor-%'",
    ) == [(4,)]
    incremental = [_sql(home, query) for query in MARTS]
    _run(home, full_refresh=True)
    assert [_sql(home, query) for query in MARTS] == incremental


def test_after_an_erasure_the_next_run_counts_the_person_out_as_a_full_refresh_does(
    home: Paths,
) -> None:
    email = _sql(home, "select email from marts.segment_memberships order by all limit 1")[0][0]
    result = subprocess.run(
        [sys.executable, "-m", "inboxgraph.cli", "forget", "--email", email],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _, built = _run(home)
    assert MEMBERSHIPS in built, "the erasure rewrote lake tables the memberships read"
    counted = _sql(
        home,
        "select segment_id, count(*) from marts.segment_memberships group by 1 order by 1",
    )
    sizes = _sql(
        home,
        "select segment_id, member_count from marts.segments where member_count > 0 order by 1",
    )
    assert sizes == counted
    assert not _sql(home, f"select * from marts.customer_profiles where email = '{email}'")
    incremental = [_sql(home, query) for query in MARTS]
    _run(home, full_refresh=True)
    assert [_sql(home, query) for query in MARTS] == incremental


def test_the_as_of_models_are_found_through_macros() -> None:
    manifest = {
        "macros": {
            "macro.inboxgraph.as_of": {"depends_on": {"macros": []}},
            "macro.inboxgraph.window": {"depends_on": {"macros": ["macro.inboxgraph.as_of"]}},
            "macro.inboxgraph.other": {"depends_on": {"macros": []}},
        },
        "nodes": {
            "model.p.direct": {"depends_on": {"macros": ["macro.inboxgraph.as_of"]}},
            "model.p.through": {"depends_on": {"macros": ["macro.inboxgraph.window"]}},
            "model.p.none": {"depends_on": {"macros": ["macro.inboxgraph.other"]}},
        },
    }
    assert as_of_models(manifest) == {"model.p.direct", "model.p.through"}


def test_code_versions_follow_sql_config_and_macros() -> None:
    node = {"raw_code": "select 1", "config": {"materialized": "table"}}
    digest = macros_digest({"metadata": {"project_name": "p"}, "macros": {}})
    other = macros_digest(
        {
            "metadata": {"project_name": "p"},
            "macros": {"macro.p.m": {"package_name": "p", "macro_sql": "x"}},
        }
    )
    version = node_code_version(node, digest)
    assert version == node_code_version(dict(node), digest)
    assert version != node_code_version({**node, "raw_code": "select 2"}, digest)
    assert version != node_code_version({**node, "config": {"materialized": "view"}}, digest)
    assert version != node_code_version(node, other)
