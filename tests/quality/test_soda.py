from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from inboxgraph.quality.soda import MART_CONTRACTS, contracts, verify

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
