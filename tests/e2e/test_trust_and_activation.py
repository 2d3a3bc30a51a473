"""Audit trail, blocking checks and consent-aware exports on a full pipeline run."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import orjson
import polars as pl
import pytest

from inboxgraph.activation import BRAZE_BATCH_LIMIT
from inboxgraph.assets.activation import EXPORT_KEYS, activation_assets
from inboxgraph.assets.warehouse import LINEAGE_CACHE, MANIFEST, translator, warehouse_dbt_models
from inboxgraph.dbt_project import (
    build_events,
    dbt_cli,
    ensure_manifest,
    invocation_dir,
    target_dir,
)
from inboxgraph.definitions import defs
from inboxgraph.lineage import ColumnLineageCache, project_fingerprint
from inboxgraph.resources.lake import LakeResource
from inboxgraph.runner import RunSummary, prepare_instance, run_pipeline
from inboxgraph.settings import Paths
from tests.e2e.pipeline import AS_OF, pipeline_home, rerun

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Paths, RunSummary]]:
    with pipeline_home(tmp_path_factory.mktemp("trust")) as result:
        yield result


def _sql(paths: Paths, query: str, *params: object) -> list[tuple]:
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        return con.execute(query, list(params)).fetchall()


def _exports(paths: Paths, esp: str) -> list[Path]:
    return sorted((Path(paths.exports) / esp).rglob("*.*"))


def test_the_audit_trail_has_a_row_for_every_materialization(
    pipeline: tuple[Paths, RunSummary],
) -> None:
    paths, summary = pipeline
    instance = prepare_instance(paths)
    for run_id in summary.run_ids:
        # A range run's summary, which Dagster records on every partition of the range, is
        # left out: each partition has a row of its own figures.
        events = [
            e
            for e in instance.get_records_for_run(
                run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
            ).records
            if "partition_range"
            not in e.event_log_entry.dagster_event.event_specific_data.materialization.metadata
        ]
        expected = {
            (
                e.event_log_entry.dagster_event.asset_key.to_user_string(),
                e.event_log_entry.dagster_event.partition,
            )
            for e in events
        }
        rows = _sql(
            paths,
            "select asset_key, partition, rows_out, code_version "
            "from marts.audit_log where run_id = ?",
            run_id,
        )
        assert {(key, partition) for key, partition, _, _ in rows} == expected
        assert len(rows) == len(events)
    lake_rows = _sql(
        paths,
        "select rows_in, rows_out, rows_quarantined, duration_s, "
        "code_version from marts.audit_log where asset_key = "
        "'lake/hubspot_contacts'",
    )
    rows_in, rows_out, quarantined, duration, version = lake_rows[0]
    assert rows_in == rows_out + quarantined and duration is not None and version == "lake-1"
    assert _sql(
        paths, "select count(*) from marts.audit_log where asset_key = 'marts/audit_log'"
    ) == [(1,)]


def test_exports_parse_as_their_formats_and_hold_only_subscribed_people(
    pipeline: tuple[Paths, RunSummary],
) -> None:
    paths, _ = pipeline
    subscribed = {
        e
        for (e,) in _sql(
            paths,
            "select email from marts.customer_profiles where "
            "preferences.email_status = 'subscribed'",
        )
    }
    mailchimp = [p for p in _exports(paths, "mailchimp") if p.name.endswith("-add.csv")]
    assert mailchimp
    exported: set[str] = set()
    for path in mailchimp:
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        assert list(rows[0]) == [
            "Email Address",
            "First Name",
            "Last Name",
            "Tags",
            "TOP_CATEGORY",
            "PRODUCTS",
            "LTV_TIER",
        ]
        exported |= {r["Email Address"] for r in rows}
    for path in [p for p in _exports(paths, "klaviyo") if p.name.endswith("-add.csv")]:
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        assert list(rows[0])[:3] == ["Email", "First Name", "Last Name"]
        exported |= {r["Email"] for r in rows}
    batches = [orjson.loads(p.read_bytes()) for p in _exports(paths, "braze")]
    assert batches and all(0 < len(b["attributes"]) <= BRAZE_BATCH_LIMIT for b in batches)
    exported |= {o["email"] for b in batches for o in b["attributes"] if "email" in o}
    assert exported and exported <= subscribed
    suppressed = list(
        csv.DictReader(
            io.StringIO((Path(paths.exports) / "suppression" / "suppressions.csv").read_text())
        )
    )
    assert suppressed and {r["reason"] for r in suppressed} <= {
        "unsubscribed",
        "bounced",
        "complained",
    }
    assert not {r["email"] for r in suppressed} & exported


def _materialize_exports(paths: Paths) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        activation_assets,
        resources=defs.resources,
        instance=prepare_instance(paths),
        selection=dg.AssetSelection.assets(*EXPORT_KEYS),
    )


def test_a_second_export_without_changes_adds_and_removes_nothing(
    pipeline: tuple[Paths, RunSummary],
) -> None:
    paths, _ = pipeline
    before = {esp: _exports(paths, esp) for esp in ("mailchimp", "klaviyo", "braze")}
    result = _materialize_exports(paths)
    for event in result.get_asset_materialization_events():
        metadata = event.event_specific_data.materialization.metadata
        assert (metadata["added"].value, metadata["removed"].value) == (0, 0)
        assert metadata["files_written"].value == 0
    assert {esp: _exports(paths, esp) for esp in before} == before


def test_an_unsubscribe_shows_as_removed_in_the_next_delta(
    pipeline: tuple[Paths, RunSummary],
) -> None:
    paths, _ = pipeline
    segment, email = _sql(
        paths,
        "select segment_id, email from marts.segment_memberships "
        "order by segment_id, email limit 1",
    )[0]
    when = AS_OF - timedelta(hours=2)
    day = when.strftime("%Y-%m-%d")
    folder = Path(paths.landing_url) / "esp_events" / day
    folder.mkdir(parents=True, exist_ok=True)
    event = {
        "email": email,
        "event": "unsubscribe",
        "timestamp": int(when.timestamp()),
        "sg_event_id": "unsubscribe-test-1",
        "sg_message_id": "m.test",
    }
    (folder / "unsubscribe-test.jsonl").write_bytes(orjson.dumps(event) + b"\n")
    rerun(paths)
    status = _sql(
        paths, "select preferences.email_status from marts.customer_profiles where email = ?", email
    )
    assert status == [("unsubscribed",)]
    removals = [p for p in _exports(paths, "mailchimp") if p.name == f"{segment}-remove.csv"]
    assert removals
    removed = {r["Email Address"] for r in csv.DictReader(io.StringIO(removals[-1].read_text()))}
    assert email in removed
    adds = [
        p
        for p in _exports(paths, "mailchimp")
        if p.parent == removals[-1].parent and p.name.endswith("-add.csv")
    ]
    assert all(email not in p.read_text() for p in adds)


def test_a_failed_blocking_check_stops_every_export(pipeline: tuple[Paths, RunSummary]) -> None:
    paths, _ = pipeline
    # Corrupt a mart's input: a CRM contact's address in the lake becomes invalid (as a faulty
    # upstream write would). dbt builds the profile without complaint; the contract must not.
    contacts = LakeResource(url=paths.lake_url)
    (path,) = [
        p for p in contacts.files("raw", "hubspot_contacts") if pl.read_parquet(p).height > 0
    ][:1]
    frame = pl.read_parquet(path)
    broken = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit("broken-address"))
        .otherwise(pl.col("email"))
        .alias("email")
    )
    broken.write_parquet(path)
    before = {esp: _exports(paths, esp) for esp in ("mailchimp", "klaviyo", "braze")}

    summary = run_pipeline(paths, as_of=AS_OF, log=lambda _: None)

    assert not summary.succeeded
    assert "marts/customer_profiles:soda_contract" in summary.checks_failed
    instance = prepare_instance(paths)
    refresh = summary.run_ids[-1]
    evaluations = [
        r.event_log_entry.dagster_event.event_specific_data
        for r in instance.get_records_for_run(
            refresh, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    ]
    profiles = next(
        e
        for e in evaluations
        if e.asset_key == dg.AssetKey(["marts", "customer_profiles"])
        and e.check_name == "soda_contract"
    )
    assert not profiles.passed
    assert "email.valid email address" in profiles.metadata["failed_checks"].value
    materialized = {
        r.event_log_entry.dagster_event.asset_key
        for r in instance.get_records_for_run(
            refresh, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
    }
    assert dg.AssetKey(["marts", "customer_profiles"]) in materialized
    assert not {key for a in activation_assets for key in a.keys} & materialized
    assert {esp: _exports(paths, esp) for esp in before} == before
    frame.write_parquet(path)


def test_the_as_of_reaches_dbt_and_each_home_keeps_its_own_parse(
    pipeline: tuple[Paths, RunSummary], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's as-of reaches dbt (as a var). Homes that share the dbt project each keep their
    manifest and dbt's partial parse: a parse for another home in between leaves this home's
    alone, so its next dbt command parses only what changed."""
    paths, summary = pipeline
    assert _sql(paths, "select distinct as_of from marts.segments") == [(AS_OF,)]
    here = target_dir()
    assert list(here.glob(f"warehouse_dbt_models-{summary.run_ids[-1][:7]}-*/dbt.log"))
    with monkeypatch.context() as patch:
        patch.setenv("INBOXGRAPH_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
        patch.setenv("INBOXGRAPH_LAKE_URL", str(tmp_path / "lake"))
        other = ensure_manifest()
    assert other.exists() and other.parent != here
    listed = dbt_cli().cli(
        ["ls", "--select", "customer_profiles"], target_path=invocation_dir("ls")
    )
    assert listed.is_successful()
    log = (listed.target_path / "dbt.log").read_text()
    assert "Unable to do partial parsing" not in log
    assert "Partial parsing enabled" in log or "skipping partial parsing" in log


def test_a_rerun_carries_the_column_lineage_from_the_cache(
    pipeline: tuple[Paths, RunSummary],
) -> None:
    """The first run worked each model's column lineage out; a rerun of the same project takes
    it from the cache (which holds every model and seed the warehouse asset builds, so a rerun
    does not work it out again), and the UI's column lineage is the same after it."""
    paths, _ = pipeline
    instance = prepare_instance(paths)
    key = dg.AssetKey(["marts", "customer_profiles"])

    def lineage() -> dg.TableColumnLineage:
        event = instance.get_latest_materialization_event(key)
        return event.asset_materialization.metadata["dagster/column_lineage"].value

    first = lineage()
    assert first.deps_by_column["person_id"], "the profiles have column lineage"
    cache = orjson.loads(LINEAGE_CACHE.read_text())
    assert "model.inboxgraph.customer_profiles" in cache["models"]
    built = {
        str(spec.metadata["dagster_dbt/unique_id"])
        for spec in warehouse_dbt_models.specs
        if "dagster_dbt/unique_id" in spec.metadata
    }
    fingerprint = project_fingerprint(orjson.loads(MANIFEST.read_bytes()))
    held = ColumnLineageCache(LINEAGE_CACHE, fingerprint, building=built)
    assert held.reusable, sorted(built - held.models.keys())
    rerun(paths)
    assert lineage() == first


def test_each_model_arrives_with_its_metadata_while_dbt_runs(
    pipeline: tuple[Paths, RunSummary], tmp_path: Path
) -> None:
    """Each model's event comes as dbt finishes it, before dbt exits, with the row count and
    column schema the project's post-hook logged (a table's count taken after its merge
    deleted rows), and its column lineage when asked for."""
    paths, _ = pipeline
    # A view, incremental tables with nothing new (the warehouse stays as it was), one whose
    # merge deletes rows, and a mart.
    models = [
        "stg_hubspot__contacts",
        "int_web__events_parsed",
        "int_person__web_activity_aggregated",
        "int_person__orders_summarized",
        "identity_map",
    ]
    invocation = dbt_cli().cli(
        ["run", "--select", " ".join(models)],
        manifest=MANIFEST,
        dagster_dbt_translator=translator,
        target_path=tmp_path / "target",
    )
    events, while_running = [], []
    for event in build_events(invocation, with_column_lineage=True):
        while_running.append(invocation.process.poll() is None)
        events.append(event)
    assert invocation.process.wait() == 0
    assert while_running[0], "the first model's event came before dbt exited"
    by_model = {event.metadata["unique_id"].value.split(".")[-1]: event for event in events}
    assert sorted(by_model) == sorted(models)
    relations = {
        "int_web__events_parsed": "intermediate.int_web__events_parsed",
        "int_person__web_activity_aggregated": "intermediate.int_person__web_activity_aggregated",
        "int_person__orders_summarized": "intermediate.int_person__orders_summarized",
        "identity_map": "marts.identity_map",
    }
    for model, relation in relations.items():
        (count,) = _sql(paths, f"select count(*) from {relation}")[0]
        assert by_model[model].metadata["dagster/row_count"].value == count > 0, model
        columns = [name for name, *_ in _sql(paths, f"describe {relation}")]
        schema = by_model[model].metadata["dagster/column_schema"].value
        assert [column.name for column in schema.columns] == columns, model
    assert "dagster/row_count" not in by_model["stg_hubspot__contacts"].metadata, "a view"
    lineage = by_model["identity_map"].metadata["dagster/column_lineage"].value
    assert lineage.deps_by_column["person_id"], "lineage from the parents' columns"
