"""Probable duplicate people that no deterministic rule links, scored by splink (DuckDB).

Two people with the same first name, last name and city (splink's blocking rule: only such
pairs are compared) are scored on their names, city, country and primary address (exact, the
same user name at another domain, or a near miss such as a typo, by Jaro-Winkler). The m
probabilities (how often a true duplicate agrees at each level) are fixed below from what
duplicates in a shop's customer base look like; the u probabilities (how often two different
people agree) are estimated from the data by random sampling, and names carry term-frequency
adjustments, so a shared rare name weighs more than a common one. No EM training runs: the
scores are reproducible and the step costs one pass over the candidate pairs.

Suggestions are for review, never applied: accepting one is writing a ``link`` override
(``inboxgraph identity link email:... email:...``), and a pair kept apart by a ``never_link``
override is never suggested.
"""

from __future__ import annotations

import logging

import duckdb
import pyarrow as pa

# Pairs sampled to estimate how often two different people agree at each level.
U_SAMPLE_PAIRS = 2e6
# People who can be compared: a name and a city to block on, and an address.
CANDIDATES = """
create or replace table suggestion_candidates as
select
    person_id as unique_id,
    email,
    lower(trim(demographics.first_name)) as first_name,
    lower(trim(demographics.last_name)) as last_name,
    lower(trim(demographics.city)) as city,
    lower(trim(demographics.country)) as country
from warehouse.marts.customer_profiles
where email is not null
    and demographics.first_name is not null
    and demographics.last_name is not null
    and demographics.city is not null
"""

# Pairs an override keeps apart (by any of their identifiers).
KEPT_APART = """
select distinct left_person.person_id as left_id, right_person.person_id as right_id
from warehouse.marts.identity_links as links
inner join warehouse.marts.identity_map as left_person
    on left_person.identifier_type = links.left_type
    and left_person.identifier_value = links.left_value
inner join warehouse.marts.identity_map as right_person
    on right_person.identifier_type = links.right_type
    and right_person.identifier_value = links.right_value
where links.rule = 'never_link'
"""

SCHEMA = pa.schema(
    [
        ("left_person_id", pa.string()),
        ("right_person_id", pa.string()),
        ("match_probability", pa.float64()),
        ("match_weight", pa.float64()),
        ("left_email", pa.string()),
        ("right_email", pa.string()),
        ("first_name", pa.string()),
        ("last_name", pa.string()),
        ("city", pa.string()),
        ("accept_with", pa.string()),
    ]
)


def _settings():
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type="dedupe_only",
        blocking_rules_to_generate_predictions=[block_on("first_name", "last_name", "city")],
        comparisons=[
            cl.ExactMatch("first_name")
            .configure(term_frequency_adjustments=True)
            .configure(m_probabilities=[0.95, 0.05]),
            cl.ExactMatch("last_name")
            .configure(term_frequency_adjustments=True)
            .configure(m_probabilities=[0.95, 0.05]),
            cl.ExactMatch("city").configure(m_probabilities=[0.9, 0.1]),
            cl.ExactMatch("country").configure(m_probabilities=[0.95, 0.05]),
            # exact, same user name, near miss (full), near miss (user name), else
            cl.EmailComparison("email").configure(m_probabilities=[0.3, 0.15, 0.3, 0.1, 0.15]),
        ],
        probability_two_random_records_match=0.0005,
        retain_intermediate_calculation_columns=False,
    )


def suggest(warehouse_path: str, threshold: float = 0.9, seed: int = 42) -> pa.Table:
    """Scored pairs of people at or above ``threshold``, most probable first."""
    from splink import DuckDBAPI, Linker

    with duckdb.connect() as con:
        con.execute(
            f"attach '{warehouse_path.replace(chr(39), chr(39) * 2)}' as warehouse (read_only)"
        )
        con.execute(CANDIDATES)
        count = con.execute("select count(*) from suggestion_candidates").fetchone()[0]
        if count < 2:
            return SCHEMA.empty_table()
        db_api = DuckDBAPI(connection=con)
        people = db_api.register("suggestion_candidates")
        linker = Linker(people, _settings(), log_level=logging.ERROR)
        linker.training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=seed)
        # Levels no sampled pair reached keep splink's default u (a rare level: a near miss).
        predictions = linker.inference.predict(
            threshold_match_probability=threshold, warning_mode="never"
        )
        con.execute(f"create or replace temp table kept_apart as {KEPT_APART}")
        return con.execute(
            f"""
            select
                least(p.unique_id_l, p.unique_id_r) as left_person_id,
                greatest(p.unique_id_l, p.unique_id_r) as right_person_id,
                p.match_probability,
                p.match_weight,
                case when p.unique_id_l < p.unique_id_r then p.email_l else p.email_r end
                    as left_email,
                case when p.unique_id_l < p.unique_id_r then p.email_r else p.email_l end
                    as right_email,
                p.first_name_l as first_name,
                p.last_name_l as last_name,
                p.city_l as city,
                'inboxgraph identity link email:' || left_email || ' email:' || right_email
                    || ' --reason "..."' as accept_with
            from {predictions.physical_name} as p
            where not exists (
                select 1 from kept_apart as k
                where (k.left_id = p.unique_id_l and k.right_id = p.unique_id_r)
                    or (k.left_id = p.unique_id_r and k.right_id = p.unique_id_l)
            )
            order by match_probability desc, left_person_id, right_person_id
            """
        ).to_arrow_table()
