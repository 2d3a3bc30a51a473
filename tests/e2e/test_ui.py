"""The way the project card says people use Inboxgraph: the Dagster UI (`dagster dev` with its
daemon) launches every run, the landing sensor and the nightly schedule start theirs, and the
warehouse they build equals the command line's."""

from __future__ import annotations

import shutil
import signal
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import orjson
import polars as pl
import psutil
import pytest
from polars.testing import assert_frame_equal

from inboxgraph.partitions import EVENT_SOURCES
from inboxgraph.runner import INSTANCE_TEMPLATE
from tests.conftest import generate, inboxgraph_cli, processes_ended
from tests.e2e.dagster_ui import DagsterUI, ui_environment

pytestmark = pytest.mark.e2e

MARTS = ("identity_map", "customer_profiles", "segment_memberships", "segments")
# When a table was built or evaluated, not what it holds.
BUILD_TIMES = {"as_of", "refreshed_at", "built_at"}

GRAPH = """
{
  assetNodes {
    assetKey { path }
    groupName
    isMaterializable
    owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
    dependencyKeys { path }
    hasAssetChecks
    assetChecksOrError { ... on AssetChecks { checks { name blocking description } } }
    internalFreshnessPolicy {
      __typename
      ... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds }
    }
    partitionKeysByDimension { partitionKeys }
  }
}
"""


def _cli(env: dict[str, str], *args: str) -> str:
    ran = inboxgraph_cli(*args, env=env)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return ran.stdout


def _marts(warehouse: Path) -> dict[str, pl.DataFrame]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = {}
        for name in MARTS:
            frame = con.sql(f"select * from marts.{name}").pl()
            frame = frame.drop([c for c in frame.columns if c in BUILD_TIMES])
            tables[name] = frame.sort(frame.columns[:2])
        return tables


def _lake_rows(home: Path, source: str, day: str) -> int:
    files = list((home / "lake" / "raw" / source / f"received_date={day}").glob("*.parquet"))
    return pl.scan_parquet(files).select(pl.len()).collect().item() if files else 0


def _land_a_new_day(landing: Path, day: str) -> int:
    folder = landing / "web_events" / day
    folder.mkdir(parents=True)
    at = f"{day}T09:00:00.000Z"
    lines = [
        {
            "type": "track",
            "messageId": f"ui-test-{n}",
            "anonymousId": f"ui-anon-{n}",
            "event": "Product Viewed",
            "properties": {"product_id": "P0001"},
            "timestamp": at,
            "receivedAt": at,
        }
        for n in range(7)
    ]
    (folder / "events-ui.jsonl").write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in lines))
    return len(lines)


def test_every_ui_launch_path_runs_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_home, ui_home = tmp_path / "cli", tmp_path / "ui"
    generate(cli_home / "landing", people=300, days=20)
    shutil.copytree(cli_home / "landing", ui_home / "landing")
    # Both warehouses are evaluated at one moment (days since, recency) to compare them.
    as_of = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    _cli(ui_environment(cli_home), "run", "--as-of", as_of.replace(" ", "T"))
    expected = _marts(cli_home / "warehouse.duckdb")

    env = ui_environment(ui_home)
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])  # the instance's config reads it
    # The instance `inboxgraph` creates in a new home (platform/dagster.yaml).
    Path(env["DAGSTER_HOME"]).mkdir()
    shutil.copyfile(INSTANCE_TEMPLATE, Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    days = sorted(
        {
            p.name
            for folder in EVENT_SOURCES.values()
            for p in (ui_home / "landing" / folder).iterdir()
        }
    )
    log = tmp_path / "dagster-dev.log"
    with DagsterUI(env, log) as ui:
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        nodes = {"/".join(n["assetKey"]["path"]): n for n in ui.query(GRAPH)["assetNodes"]}

        # The partitions start at the first landed day and end today.
        today = datetime.now(UTC).date()
        keys = nodes["lake/web_events"]["partitionKeysByDimension"][0]["partitionKeys"]
        assert keys[0] == days[0] and keys[-1] == today.isoformat()
        assert len(keys) == len(days) + (today - date.fromisoformat(days[-1])).days

        # The landing sensor, on by default, lands every day of a fresh home by itself.
        (sensed,) = ui.wait_for_tagged_runs(instance, {"dagster/sensor_name": "landing_sensor"})
        assert sensed.status == dg.DagsterRunStatus.SUCCESS, ui.tail()

        # (a) Materialize one asset; (b) one events partition range; (c) Materialize all;
        # (d) refresh_warehouse from the Jobs page.
        one = ui.launch_run("__ASSET_JOB", assets=[["lake", "shop_products"]])
        assert ui.wait_for_run(one) == "SUCCESS", ui.tail()
        span = ui.launch_run(
            "ingest_events",
            tags={
                "dagster/asset_partition_range_start": days[2],
                "dagster/asset_partition_range_end": days[5],
            },
        )
        assert ui.wait_for_run(span) == "SUCCESS", ui.tail()
        everything = [path.split("/") for path, node in nodes.items() if node["isMaterializable"]]
        backfill = ui.launch_backfill(everything)
        assert ui.wait_for_backfill(backfill) == "COMPLETED_SUCCESS", ui.tail()
        backfill_runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill}))
        assert backfill_runs
        assert {r.status for r in backfill_runs} == {dg.DagsterRunStatus.SUCCESS}
        refresh = ui.launch_run(
            "refresh_warehouse",
            run_config={"ops": {"warehouse_dbt_models": {"config": {"as_of": as_of}}}},
        )
        assert ui.wait_for_run(refresh) == "SUCCESS", ui.tail()

        # Each partition carries its own figures.
        for day in (days[0], days[3], days[-1]):
            (record,) = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey(["lake", "web_events"]), asset_partitions=[day]
                ),
                limit=1,
            ).records
            metadata = record.asset_materialization.metadata
            assert metadata["dagster/row_count"].value == _lake_rows(ui_home, "web_events", day)
            assert metadata["rows_in"].value == (
                metadata["rows_landed"].value + metadata["rows_quarantined"].value
            )
            assert "dagster/column_schema" in metadata

        # The run worker killed outright (an out-of-memory kill) inside the dbt build: its code
        # server marks the run failed, dbt dies with it, run monitoring frees its pool slot
        # and the run retry policy starts a run that completes the refresh. (A full refresh:
        # with nothing new, a refresh confirms the models without starting dbt.)
        killed = ui.launch_run(
            "refresh_warehouse",
            run_config={
                "ops": {"warehouse_dbt_models": {"config": {"as_of": as_of, "full_refresh": True}}}
            },
        )
        dbt = _wait_for_dbt_build(ui)
        worker = dbt.parent()
        worker.send_signal(signal.SIGKILL)
        assert ui.wait_for_run(killed, timeout=120) == "FAILURE", ui.tail()
        assert processes_ended([dbt], timeout=15), "dbt outlived the run worker"
        (retry,) = ui.wait_for_tagged_runs(instance, {"dagster/parent_run_id": killed})
        assert retry.status == dg.DagsterRunStatus.SUCCESS, ui.tail()
        pool = instance.event_log_storage.get_concurrency_info("warehouse")
        assert killed not in {slot.run_id for slot in pool.claimed_slots}
        instance.dispose()

    got = _marts(ui_home / "warehouse.duckdb")
    for name in MARTS:
        assert_frame_equal(got[name], expected[name], check_row_order=False), name

    _graph_reads_as_a_product(nodes)

    # A newly landed day and the nightly schedule (set to fire every minute) through the daemon.
    new_day = (date.fromisoformat(days[-1]) + timedelta(days=1)).isoformat()
    landed = _land_a_new_day(ui_home / "landing", new_day)
    with DagsterUI({**env, "INBOXGRAPH_NIGHTLY_CRON": "* * * * *"}, log) as ui:
        instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
        sensed = ui.wait_for_tagged_runs(
            instance,
            {
                "dagster/sensor_name": "landing_sensor",
                "dagster/asset_partition_range_start": new_day,
            },
        )
        assert [r.status for r in sensed] == [dg.DagsterRunStatus.SUCCESS], ui.tail()
        assert _lake_rows(ui_home, "web_events", new_day) == landed
        # The schedule fires every minute: wait for a tick after the new day reached the lake.
        (landed_run,) = instance.get_run_records(dg.RunsFilter(run_ids=[sensed[0].run_id]))
        deadline = time.monotonic() + 300
        while True:
            ticks = [
                record
                for record in instance.get_run_records(
                    dg.RunsFilter(tags={"dagster/schedule_name": "nightly_refresh"})
                )
                if record.start_time
                and record.start_time > landed_run.end_time
                and record.dagster_run.status.value in ("SUCCESS", "FAILURE", "CANCELED")
            ]
            if ticks:
                break
            assert time.monotonic() < deadline, ui.tail()
            time.sleep(2)
        assert ticks[0].dagster_run.status == dg.DagsterRunStatus.SUCCESS, ui.tail()
        instance.dispose()
    with duckdb.connect(str(ui_home / "warehouse.duckdb"), read_only=True) as con:
        anonymous = con.sql(
            "select count(*) from marts.identity_map where identifier_type = 'anonymous_id' "
            "and identifier_value like 'ui-anon-%'"
        ).fetchone()[0]
    assert anonymous == landed, "the scheduled refresh built the new day into the warehouse"


def _wait_for_dbt_build(ui: DagsterUI, timeout: float = 300) -> psutil.Process:
    """The `dbt build` a run of the UI's started, once it runs."""
    deadline = time.monotonic() + timeout
    while True:
        for process in psutil.Process(ui.process.pid).children(recursive=True):
            try:
                command = process.cmdline()
            except psutil.NoSuchProcess:
                continue
            if any(part.endswith("dbt") for part in command) and "build" in command:
                return process
        assert time.monotonic() < deadline, f"no dbt build started\n{ui.tail()}"
        time.sleep(0.2)


def _graph_reads_as_a_product(nodes: dict[str, dict]) -> None:
    def deps(key: str) -> set[str]:
        return {"/".join(d["path"]) for d in nodes[key]["dependencyKeys"]}

    assert deps("lake/web_events") == {"sources/web_events"}
    assert deps("warehouse/stg_web__events") == {
        "lake/web_events",
        "warehouse/stg_ga4__events",
        "warehouse/stg_mixpanel__events",
    }
    assert deps("warehouse/stg_ga4__events") == {"lake/ga4_events"}
    assert deps("lake/mixpanel_events") == {"sources/mixpanel_events", "landing/mixpanel_events"}
    assert deps("lake/hubspot_contacts") == {"sources/hubspot_contacts", "landing/hubspot_contacts"}
    assert deps("lake/salesforce_leads") == {"sources/salesforce_leads", "landing/salesforce"}
    assert deps("warehouse/stg_salesforce__contacts") == {"lake/salesforce_contacts"}
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
        c["name"]: c for c in nodes["marts/customer_profiles"]["assetChecksOrError"]["checks"]
    }
    assert checks["soda_contract"]["blocking"] is True
    assert "unique_customer_profiles_person_id" in checks
    assert nodes["lake/web_events"]["hasAssetChecks"]
    policy = nodes["marts/customer_profiles"]["internalFreshnessPolicy"]
    assert policy["__typename"] == "TimeWindowFreshnessPolicy"
    assert (policy["failWindowSeconds"], policy["warnWindowSeconds"]) == (30 * 3600, 26 * 3600)
    assert nodes["sources/web_events"]["internalFreshnessPolicy"] is None
