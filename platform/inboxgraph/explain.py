"""Why a person is who they are: their identifiers, and every observed link and override that
touches them, with the rule and the source record behind it, whether it was applied and, when
not, the rule that refused it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# The identifier types a person can be looked up by, as the identity map spells them.
IDENTIFIER_TYPES = (
    "email",
    "user_id",
    "anonymous_id",
    "customer_id",
    "hubspot_id",
    "salesforce_id",
)

LINKS = """
with own as (
    select identifier_type, identifier_value from marts.identity_map where person_id = $person
)
select left_type, left_value, right_type, right_value, rule, source, source_record_id,
    first_observed_at, observations, applied, refused_by
from marts.identity_links
where (left_type, left_value) in (select * from own)
    or (right_type, right_value) in (select * from own)
order by applied desc, first_observed_at, left_type, left_value, right_type, right_value
"""


@dataclass(frozen=True)
class Link:
    left: tuple[str, str]
    right: tuple[str, str]
    rule: str
    source: str
    source_record_id: str | None
    first_observed_at: object
    observations: int
    applied: bool
    refused_by: str | None = None


@dataclass(frozen=True)
class Explanation:
    person_id: str
    identifiers: list[tuple[str, str]]
    links: list[Link]


def normalized(identifier_type: str, value: str) -> str:
    """A value as the identity map holds it (trimmed; emails lower-cased too)."""
    value = value.strip()
    return value.lower() if identifier_type == "email" else value


def explain(warehouse: str, identifier_type: str, value: str) -> Explanation | None:
    """The person holding the identifier, or None when no person does."""
    if not Path(warehouse).exists():
        raise FileNotFoundError(
            f"the warehouse {warehouse} (INBOXGRAPH_WAREHOUSE) does not exist; run "
            "`inboxgraph run` first"
        )
    import duckdb

    with duckdb.connect(warehouse, read_only=True) as con:
        found = con.execute(
            "select person_id from marts.identity_map "
            "where identifier_type = ? and identifier_value = ?",
            [identifier_type, normalized(identifier_type, value)],
        ).fetchone()
        return None if found is None else explain_person(con, found[0])


def explain_person(con, person_id: str) -> Explanation:
    """The explanation of one person, over a connection to the warehouse."""
    identifiers = con.execute(
        "select identifier_type, identifier_value from marts.identity_map "
        "where person_id = ? order by 1, 2",
        [person_id],
    ).fetchall()
    rows = con.execute(LINKS, {"person": person_id}).fetchall()
    links = [
        Link((lt, lv), (rt, rv), rule, source, record, first, observations, applied, refused)
        for lt, lv, rt, rv, rule, source, record, first, observations, applied, refused in rows
    ]
    return Explanation(person_id, identifiers, links)


def describe(
    explanation: Explanation, shown: Callable[[str, str], str] | None = None
) -> Iterator[str]:
    """The explanation as lines for a terminal; ``shown(type, value)`` renders a value (for
    metadata that must not hold addresses, say)."""
    show = shown or (lambda _, value: value)

    def name(identifier: tuple[str, str]) -> str:
        return f"{identifier[0]} {show(*identifier)}"

    kinds = Counter(kind for kind, _ in explanation.identifiers)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    yield f"person {explanation.person_id}: {counts}"
    for kind, value in explanation.identifiers:
        yield f"  {kind:<14}{show(kind, value)}"
    links = [link for link in explanation.links if link.left != link.right]
    applied = sum(link.applied for link in links)
    yield f"links: {applied} applied, {len(links) - applied} refused"
    for link in explanation.links:
        record = f", record {link.source_record_id}" if link.source_record_id else ""
        seen = f"first seen {link.first_observed_at:%Y-%m-%d %H:%M}, {link.observations}x"
        if link.left == link.right:  # an identifier observed on its own, no link
            yield f"  seen        {name(link.left)}"
        else:
            state = "applied" if link.applied else "REFUSED"
            yield f"  {state:<10}  {name(link.left)} ~ {name(link.right)}"
        yield f"      rule {link.rule} ({link.source}{record}); {seen}"
        if not link.applied:
            yield f"      refused by {link.refused_by or 'a rule of var identity'}"
