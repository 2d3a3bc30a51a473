"""Duplicate suggestions over a hand-made warehouse: typo'd and other addresses of one name in
one city are suggested, other cities are not compared, never_link pairs are left out."""

from __future__ import annotations

from pathlib import Path

import duckdb

from inboxgraph.suggestions import suggest

FIRST = ("ava", "ben", "cleo", "dev", "eli", "fay", "gus", "hana", "ivo", "kai")
LAST = ("adler", "brook", "costa", "dietz", "evans", "fox", "gray", "hale", "ito", "jones")
NAMES = [(first, last) for first in FIRST for last in LAST]


def _warehouse(path: Path, never_link: bool) -> str:
    people = [
        (f"p_{first}_{last}", f"{first}.{last}@example.com", first, last, city)
        for (first, last), city in zip(NAMES, ["leeds", "york", "bath"] * 34, strict=False)
    ]
    people += [
        ("p_jane", "jane.doe@example.com", "Jane", "Doe", "Leeds"),
        ("p_jane2", "jane.doe@exmaple.com", "jane", "doe ", "leeds"),
        ("p_john", "john.smith@example.com", "John", "Smith", "Leeds"),
        ("p_john2", "john.smith@example.net", "John", "Smith", "York"),
        ("p_noname", "x@example.com", None, None, "Leeds"),
    ]
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(
            "create table marts.customer_profiles (person_id varchar, email varchar, "
            "demographics struct(first_name varchar, last_name varchar, city varchar, "
            "country varchar))"
        )
        con.executemany(
            "insert into marts.customer_profiles values (?, ?, {'first_name': ?, "
            "'last_name': ?, 'city': ?, 'country': 'uk'})",
            people,
        )
        con.execute(
            "create table marts.identity_map as select person_id, 'email' as identifier_type, "
            "email as identifier_value from marts.customer_profiles"
        )
        con.execute(
            "create table marts.identity_links (left_type varchar, left_value varchar, "
            "right_type varchar, right_value varchar, rule varchar)"
        )
        if never_link:
            con.execute(
                "insert into marts.identity_links values ('email', 'jane.doe@exmaple.com', "
                "'email', 'jane.doe@example.com', 'never_link')"
            )
    return str(path)


def _pairs(warehouse: str) -> dict[frozenset, float]:
    table = suggest(warehouse, threshold=0.5)
    return {
        frozenset((row["left_email"], row["right_email"])): row["match_probability"]
        for row in table.to_pylist()
    }


def test_suggestions_score_one_name_in_one_city_and_respect_never_link(tmp_path: Path) -> None:
    pairs = _pairs(_warehouse(tmp_path / "w.duckdb", never_link=False))
    jane = frozenset({"jane.doe@example.com", "jane.doe@exmaple.com"})
    assert pairs[jane] >= 0.9
    assert frozenset({"john.smith@example.com", "john.smith@example.net"}) not in pairs
    assert all("x@example.com" not in pair for pair in pairs), "no name: never compared"
    first = suggest(_warehouse(tmp_path / "again.duckdb", never_link=False), threshold=0.5)
    assert first.to_pylist() == suggest(str(tmp_path / "again.duckdb"), 0.5).to_pylist()
    row = next(r for r in first.to_pylist() if r["left_person_id"] == "p_jane")
    assert row["accept_with"].startswith(
        "inboxgraph identity link email:jane.doe@example.com email:jane.doe@exmaple.com"
    )

    kept_apart = _pairs(_warehouse(tmp_path / "split.duckdb", never_link=True))
    assert jane not in kept_apart
