"""The identity stability measure: merges and splits among people with an address count, growth
does not."""

from __future__ import annotations

import duckdb
import pytest

from inboxgraph.assets.identity import _churn_result, _size_result
from inboxgraph.identity_health import (
    HealthSettings,
    accept,
    load_health,
    measure_shape,
    measure_stability,
)


def _map(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str]]) -> None:
    """marts.identity_map from (identifier_id, person_id) rows."""
    con.execute("create schema if not exists marts")
    con.execute(
        "create or replace table marts.identity_map (identifier_id varchar, person_id varchar, "
        "identifier_type varchar, identifier_value varchar)"
    )
    con.executemany(
        "insert into marts.identity_map values (?, ?, split_part(?, ':', 1), "
        "split_part(?, ':', 2))",
        [(i, p, i, i) for i, p in rows],
    )


BEFORE = [
    ("email:ann@x", "p_ann"),
    ("user_id:ann", "p_ann"),
    ("email:bob@x", "p_bob"),
    ("email:cy@x", "p_cy"),
    ("customer_id:9", "p_cy"),
    ("email:dee@x", "p_dee"),
    ("anonymous_id:v1", "p_v1"),
    ("customer_id:7", "p_c7"),
]


def test_merges_and_splits_count_growth_does_not() -> None:
    with duckdb.connect() as con:
        _map(con, BEFORE)
        assert not measure_stability(con).baseline
        accept(con)
        _map(
            con,
            [
                ("email:ann@x", "p_ann"),
                ("user_id:ann", "p_ann"),
                ("email:bob@x", "p_ann"),  # bob merged into ann
                ("email:cy@x", "p_cy"),
                ("customer_id:9", "p_9"),  # cy split in two
                ("email:dee@x", "p_u_dee"),  # dee created an account: renamed
                ("user_id:dee", "p_u_dee"),
                ("anonymous_id:v1", "p_ann"),  # a visitor logged in: growth
                ("customer_id:7", "p_ann"),  # a customer record arrived: growth
            ],
        )
        stability = measure_stability(con)
    assert stability.addressed_people == 4
    assert (stability.merges, stability.splits) == (1, 1)
    assert stability.changed_people == 2, "bob (merged) and cy (split)"
    assert stability.renamed_people == 1, "dee"
    assert stability.changed_share == 0.5
    assert stability.largest_merges == [
        {"person_id": "p_ann", "people_merged": 2, "identifiers": 3}
    ]


def test_accepting_makes_the_current_map_the_measure() -> None:
    with duckdb.connect() as con:
        _map(con, BEFORE)
        accept(con)
        _map(con, [(i, "p_all") for i, _ in BEFORE])
        assert measure_stability(con).changed_people == 4, "none kept its id"
        accept(con)
        assert measure_stability(con).changed_people == 0


def test_accepting_again_holds_the_map_as_it_is_now() -> None:
    """A later accept writes only the identifiers that differ, and what it holds is still the
    whole current map: a moved identifier, the ones gone and a new one alike."""
    with duckdb.connect() as con:
        _map(con, BEFORE)
        accept(con)
        now = [("email:ann@x", "p_bob"), *BEFORE[1:5], ("email:eve@x", "p_eve")]
        _map(con, now)
        accept(con)
        accepted = con.execute(
            "select identifier_id, person_id from identity.accepted_persons"
        ).fetchall()
        assert measure_stability(con).changed_people == 0
    assert sorted(accepted) == sorted(now)


def test_size_and_churn_warnings_name_what_is_over() -> None:
    with duckdb.connect() as con:
        _map(con, [(f"anonymous_id:d{n}", "p_big") for n in range(30)] + BEFORE)
        shape = measure_shape(con)
        accept(con)
        _map(con, [(i, "p_all") for i, _ in BEFORE])
        stability = measure_stability(con)
    settings = HealthSettings(max_identifiers_per_person=25, max_merges=0)
    size = _size_result(shape, settings)
    assert not size.passed
    assert size.description.startswith("the largest person holds 30 identifiers (more than 25)")
    churn = _churn_result(stability, settings)
    assert not churn.passed and churn.description == "1 merges (more than 0)"
    assert _churn_result(stability, HealthSettings()).passed


def test_health_settings_come_from_the_project_and_are_checked() -> None:
    assert load_health() == HealthSettings()
    with pytest.raises(ValueError, match="unknown settings \\['max_chnaged_share'\\]"):
        HealthSettings.from_settings({"max_chnaged_share": 0.1})
    with pytest.raises(ValueError, match="max_changed_share must be between 0 and 1"):
        HealthSettings.from_settings({"max_changed_share": 2})
