from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import polars as pl
import pytest

from inboxgraph.assets.quality import lake_contracts, run_received_dates
from inboxgraph.quality.soda import (
    MART_CONTRACTS,
    contracts,
    lake_connection,
    lake_views,
    verify,
)
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.wiring import source_resources
from inboxgraph.settings import Paths
from tests.assets.lake_helpers import partitioned_assets
from tests.warehouse.scenario import write_lines

EMAIL = "'^[a-z0-9._%+''\\-]+@[a-z0-9\\-]+(\\.[a-z0-9\\-]+)*\\.[a-z]{2,}$'"
CONTRACT = f"""
dataset: inboxgraph/marts/people
checks:
  - schema:
  - row_count:
      threshold:
        must_be_greater_than: 0
columns:
  - name: person_id
    data_type: VARCHAR
    checks:
      - missing:
      - duplicate:
  - name: email
    data_type: VARCHAR
    checks:
      - invalid:
          name: valid email address
          valid_format:
            name: email address
            regex: {EMAIL}
"""


@pytest.fixture
def connection(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema marts; create table marts.people (person_id varchar, email varchar)")
    return con


def _contract(tmp_path: Path) -> Path:
    path = tmp_path / "people.contract.yml"
    path.write_text(CONTRACT)
    return path


def test_a_clean_table_passes(tmp_path: Path, connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(
        "insert into marts.people values ('p1', 'a@example.com'), ('p2', 'b@example.org')"
    )
    outcome = verify(_contract(tmp_path), connection)
    assert outcome.passed, outcome.checks
    assert {c["outcome"] for c in outcome.checks} == {"PASSED"}
    assert len(outcome.checks) == 5


def test_duplicates_and_invalid_emails_fail_with_the_checks_named(
    tmp_path: Path, connection: duckdb.DuckDBPyConnection
) -> None:
    connection.execute(
        "insert into marts.people values ('p1', 'a@example.com'), "
        "('p1', 'not-an-email'), ('p3', 'c@example.com')"
    )
    outcome = verify(_contract(tmp_path), connection)
    assert not outcome.passed
    failed = outcome.failed_checks
    assert any(name.startswith("person_id.") for name in failed)
    assert "email.valid email address" in failed
    duplicate = next(
        c for c in outcome.checks if c["name"].startswith("person_id.") and c["type"] == "duplicate"
    )
    assert duplicate["diagnostics"]["duplicate_count"] == 1
    assert "email.valid email address" in outcome.as_markdown()


def test_a_wrong_column_type_fails_the_schema_check(
    tmp_path: Path, connection: duckdb.DuckDBPyConnection
) -> None:
    connection.execute(
        "drop table marts.people; create table marts.people "
        "(person_id integer, email varchar); insert into marts.people "
        "values (1, 'a@example.com')"
    )
    outcome = verify(_contract(tmp_path), connection)
    assert not outcome.passed
    assert any("chema" in name for name in outcome.failed_checks)


def test_every_mart_that_feeds_activation_has_a_contract() -> None:
    assert {"customer_profiles", "identity_map", "segment_memberships"} <= set(
        contracts(MART_CONTRACTS)
    )


def test_a_run_that_landed_some_dates_checks_only_those(tmp_path: Path) -> None:
    lake = LakeResource(url=str(tmp_path / "lake"))
    for day, rows in (("2026-11-01", 4), ("2026-11-02", 2), ("2026-11-03", 1)):
        frame = pl.DataFrame({"message_id": [f"{day}-{i}" for i in range(rows)]})
        lake.write("raw", "web_events", frame, {"received_date": day})
    lake.write("raw", "hubspot_contacts", pl.DataFrame({"contact_id": ["c1", "c2"]}))
    partitioned = frozenset({"web_events"})

    def rows_seen(received: tuple[str, str] | None) -> dict[str, int]:
        sources = ["web_events", "hubspot_contacts"]
        with lake_connection(lake, sources, received, partitioned) as connection:
            return {
                s: connection.sql(f"select count(*) from lake.{s}").fetchone()[0] for s in sources
            }

    ranged = {
        "dagster/asset_partition_range_start": "2026-11-02",
        "dagster/asset_partition_range_end": "2026-11-03",
    }
    assert rows_seen(run_received_dates(ranged)) == {"web_events": 3, "hubspot_contacts": 2}
    one_day = run_received_dates({"dagster/partition": "2026-11-01"})
    assert rows_seen(one_day) == {"web_events": 4, "hubspot_contacts": 2}
    assert run_received_dates({"inboxgraph/trigger": "cli"}) is None
    assert rows_seen(None) == {"web_events": 7, "hubspot_contacts": 2}
    # Nothing landed on the named dates: nothing of the table is new, so it gets no view.
    with lake_connection(lake, ["web_events"], ("2026-11-09", "2026-11-09"), partitioned) as c:
        assert lake_views(c) == set()
    with lake_connection(lake, ["web_events"], None, partitioned) as c:
        assert lake_views(c) == {"web_events"}


def test_a_day_with_nothing_landed_has_no_row_to_check(platform_home: Paths) -> None:
    web = {"type": "track", "anonymousId": "anon-1", "event": "Viewed"}
    for day in ("2026-11-01", "2026-11-02"):
        records = [{**web, "messageId": f"{day}-m", "timestamp": f"{day}T10:00:00Z"}]
        write_lines(platform_home, "web_events", day, "a.jsonl", records)
    esp = {"email": "reader@example.com", "timestamp": 1_793_000_000, "event": "delivered"}
    write_lines(
        platform_home, "esp_events", "2026-11-01", "a.jsonl", [{**esp, "sg_event_id": "e1"}]
    )

    landed = ("web_events", "esp_events")

    def contracts_of(day: str) -> dict[str, dg.AssetCheckEvaluation]:
        result = dg.materialize(
            [*partitioned_assets(), lake_contracts],
            resources=source_resources(),
            instance=dg.DagsterInstance.ephemeral(),
            tags={"dagster/partition": day},
        )
        return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}

    first = contracts_of("2026-11-01")
    assert all(first[s].passed and first[s].metadata["checks_total"].value > 0 for s in landed)
    # A vendor the shop does not use (no GA4 or Mixpanel export) has no row to check.
    for unused in ("ga4_events", "mixpanel_events"):
        assert first[unused].passed
        assert first[unused].description == "nothing landed on 2026-11-01: no row to check"
    # No ESP event on 11-02: its empty partition has nothing new to check; the web day is.
    second = contracts_of("2026-11-02")
    assert second["esp_events"].passed
    assert second["esp_events"].description == "nothing landed on 2026-11-02: no row to check"
    assert second["esp_events"].metadata["rows_checked"].value == 0
    assert second["web_events"].passed
    assert second["web_events"].metadata["checks_total"].value > 0
