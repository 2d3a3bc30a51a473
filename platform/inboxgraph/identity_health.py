"""The identity graph's health: how big its people are, and how many were merged or split.

Activation reads people by person_id, so a bad batch that merges or splits many of them would
send the wrong profiles to every ESP. The stability measure compares the identity map with the
one activation last accepted (``identity.accepted_persons``, written when the check passes or a
run accepts the change), over the people who held an email address then (the people activation
sends to). Such a person counts as changed when their identifiers now carry another person_id
because they were merged with another of them (the one whose id did not survive) or split
apart. Everyday growth is not a change: a visitor who logs in, an order whose customer record
arrives later, an account created by a subscriber all join identifiers to one person (who may
be renamed, when the new identifier outranks their anchor: renames are reported beside the
measure).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from inboxgraph.project_files import dbt_var

BASELINE = "identity.accepted_persons"
# The run tag that accepts a change beyond the threshold (`inboxgraph run
# --accept-identity-changes`, or a tag on a run launched from the UI).
ACCEPT_TAG = "inboxgraph/accept_identity_changes"


@dataclass(frozen=True)
class HealthSettings:
    max_changed_share: float = 0.02
    max_merges: int = 100
    max_splits: int = 20
    max_identifiers_per_person: int = 100
    max_identifiers_p99: int = 20

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> HealthSettings:
        settings = dict(settings or {})
        unknown = set(settings) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"identity.health: unknown settings {sorted(unknown)}")
        values = cls(**settings)
        if not 0 <= values.max_changed_share <= 1:
            raise ValueError("identity.health.max_changed_share must be between 0 and 1")
        return values


def load_health(project_dir: Path | None = None) -> HealthSettings:
    """The thresholds in the dbt project's ``vars: identity: health``."""
    return HealthSettings.from_settings(dbt_var("identity", project_dir).get("health"))


@dataclass
class Stability:
    """Person ids changed since the accepted identity map."""

    baseline: bool
    addressed_people: int = 0
    changed_people: int = 0
    renamed_people: int = 0
    merges: int = 0
    splits: int = 0
    largest_merges: list[dict[str, Any]] = field(default_factory=list)
    largest_splits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed_share(self) -> float:
        return self.changed_people / self.addressed_people if self.addressed_people else 0.0


CHANGES = f"""
create or replace temp table identity_changes as
with accepted as (
    select identifier_id, person_id, split_part(identifier_id, ':', 1) as identifier_type
    from {BASELINE}
),

known as (
    select distinct person_id from accepted where identifier_type = 'email'
),

compared as (
    select accepted.person_id as before, now.person_id as after
    from accepted
    inner join marts.identity_map as now using (identifier_id)
    where accepted.person_id in (select person_id from known)
),

-- Only a person an identifier moved from or to can be merged, split or renamed: every other
-- person's identifiers all kept their person_id, so their rows would change no count.
moved as (
    select before, after from compared where before != after
)

select before, after, count(*) as identifiers
from compared
where before in (select before from moved) or after in (select after from moved)
group by all
"""


def _has_baseline(con: duckdb.DuckDBPyConnection) -> bool:
    schema, table = BASELINE.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def measure_stability(con: duckdb.DuckDBPyConnection, top: int = 10) -> Stability:
    """Changes since the accepted identity map (a connection to the warehouse)."""
    if not _has_baseline(con):
        return Stability(baseline=False)
    con.execute(CHANGES)
    addressed, changed, renamed = con.execute(
        f"""
        with merged as (
            select after from identity_changes group by after having count(distinct before) > 1
        ),

        split as (
            select before from identity_changes group by before having count(distinct after) > 1
        ),

        changed as (
            select before from identity_changes
            where before != after and after in (select after from merged)
            union
            select before from split
        )

        select
            (select count(distinct person_id) from {BASELINE}
                where split_part(identifier_id, ':', 1) = 'email'),
            (select count(*) from changed),
            (select count(distinct before) from identity_changes
                where before != after and before not in (select before from changed))
        """
    ).fetchone()
    # People now holding several people's identifiers, and people now spread over several.
    merges, splits = (
        con.execute(
            f"""
            select {side} as person_id, count(distinct {other}) as n, sum(identifiers)
            from identity_changes group by {side} having count(distinct {other}) > 1
            order by n desc, sum(identifiers) desc, person_id
            """
        ).fetchall()
        for side, other in (("after", "before"), ("before", "after"))
    )
    return Stability(
        baseline=True,
        addressed_people=addressed,
        changed_people=changed,
        renamed_people=renamed,
        merges=len(merges),
        splits=len(splits),
        largest_merges=[
            {"person_id": p, "people_merged": n, "identifiers": int(i)} for p, n, i in merges[:top]
        ],
        largest_splits=[
            {"person_id": p, "people_now": n, "identifiers": int(i)} for p, n, i in splits[:top]
        ],
    )


def accept(con: duckdb.DuckDBPyConnection) -> None:
    """Make the current identity map the one later changes are measured against: the
    identifiers whose person_id differs from the accepted one, or that came or went, are
    written (one transaction), not the whole map again."""
    con.execute("create schema if not exists identity")
    if not _has_baseline(con):
        con.execute(
            f"create table {BASELINE} as select identifier_id, person_id from marts.identity_map"
        )
        return
    con.execute("begin transaction")
    try:
        con.execute(
            f"""
            create or replace temp table accepted_changes as
            select identifier_id, now.person_id, now.identifier_id is not null as present
            from marts.identity_map as now
            full join {BASELINE} as accepted using (identifier_id)
            where now.person_id is distinct from accepted.person_id
                or now.identifier_id is null
                or accepted.identifier_id is null
            """
        )
        con.execute(
            f"delete from {BASELINE} "
            "where identifier_id in (select identifier_id from accepted_changes)"
        )
        con.execute(
            f"insert into {BASELINE} "
            "select identifier_id, person_id from accepted_changes where present"
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


@dataclass(frozen=True)
class Shape:
    people: int
    identifiers: int
    largest: int
    p99: float
    largest_people: list[dict[str, Any]]


def measure_shape(con: duckdb.DuckDBPyConnection, top: int = 5) -> Shape:
    """How many identifiers people hold: the largest, the 99th percentile."""
    con.execute(
        "create or replace temp table person_sizes as "
        "select person_id, count(*) as n from marts.identity_map group by person_id"
    )
    people, identifiers, largest, p99 = con.execute(
        """
        select count(*), coalesce(sum(n), 0), coalesce(max(n), 0),
            coalesce(quantile_cont(n, 0.99), 0)
        from person_sizes
        """
    ).fetchone()
    rows = con.execute(
        f"""
        with largest as (select * from person_sizes order by n desc, person_id limit {top})
        select person_id, largest.n, histogram(identifier_type) as types
        from largest inner join marts.identity_map using (person_id)
        group by all order by largest.n desc, person_id
        """
    ).fetchall()
    return Shape(
        people,
        int(identifiers),
        int(largest),
        float(p99),
        [{"person_id": p, "identifiers": n, "by_type": dict(t)} for p, n, t in rows],
    )
