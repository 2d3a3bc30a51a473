"""Identity resolution: every identifier with the anchor identifier of its person.

The graph algorithm lives in inboxgraph.identity (connected components within the rules of the
project's `identity` var and the overrides); this model feeds it the collected links, override
rows included. A blocked or shared identifier has no anchor (``blocked_by`` says why, and
int_identity__persons_assigned leaves it out); each link a rule refused is kept, with the rule,
in ``refused_links`` of its left identifier.

Incremental: a connected component is resolved from its own links alone, so a run resolves
again only the components whose links changed. Each identifier keeps ``links_fingerprint``, an
order-free hash of its links (the identifier at the other end, the direction, when it was
first observed, its rule) and the rules themselves, so a change of the rules resolves every
identifier again, and ``graph_component``, the component it was in. An identifier whose
fingerprint differs (a new link, a link first observed earlier, an identifier that is new or
gone) marks its old component: the run resolves the links of every marked component's
identifiers and of the new ones, which holds every link those identifiers have (a link that
did not change joins two identifiers of one component; a blocked identifier's links, outside
every component, change nothing but the rows of their affected ends, the only rows written).
Their rows are replaced; an identifier that is gone leaves an empty row, which deletes its row
(the model's merge clauses). `--full-refresh` resolves all.

Each row also carries its ``identifier_id`` and stable ``person_id`` (the hash of the person's
anchor identifier), computed here for the rows a run replaces rather than again for every
identifier by a table downstream: int_identity__persons_assigned is a view of these columns.
A table built before those columns existed is resolved again whole. ``resolved_at`` is when the
row was written: the identity links mart rewrites the links of the identifiers resolved again
since its own last build.
"""

import json

from inboxgraph.identity import (
    IDENTIFIER_ID_SQL,
    PERSON_ID_SQL,
    REFUSED_LINKS_SQL,
    REFUSED_LINKS_TYPE,
    IdentityRules,
    resolve,
)

LINK_COLUMNS = "left_type, left_value, right_type, right_value, first_observed_at, rule"
# Columns a held table must have for its rows to be kept; without them everything is resolved.
TRACKED_COLUMNS = {
    "graph_component",
    "links_fingerprint",
    "person_id",
    "identifier_id",
    "blocked_by",
    "refused_links",
}


def _rules(dbt) -> IdentityRules:
    settings = dbt.config.get("identity_rules")
    if isinstance(settings, str):
        settings = json.loads(settings)
    return IdentityRules.from_settings(settings)


def _fingerprints(session, rules: IdentityRules) -> None:
    """identity_link_fingerprints: each identifier of the links with its links' fingerprint.

    A link's hash combines its columns natively (direction, the other identifier, when it was
    first observed, its rule) and the rules' text, grouped by the identifier's two columns:
    building each link and each key as one string took half as long again over millions of
    links. A graph held with fingerprints of another form (or other rules) differs everywhere
    and is resolved again whole, once.
    """
    session.execute(
        """
        create or replace temp table identity_link_fingerprints as
        select identifier_type, identifier_value, bit_xor(link_hash) as links_fingerprint
        from (
            select
                left_type as identifier_type,
                left_value as identifier_value,
                hash('>', right_type, right_value, first_observed_at, rule, $rules) as link_hash
            from identity_links_now
            union all
            select
                right_type,
                right_value,
                hash('<', left_type, left_value, first_observed_at, rule, $rules)
            from identity_links_now
        )
        group by identifier_type, identifier_value
        """,
        {"rules": rules.fingerprint()},
    )


def _affected(session, this: str, tracked: bool) -> None:
    """identity_affected: the identifiers to resolve again (see the module's docstring)."""
    held_columns = (
        "links_fingerprint, graph_component"
        if tracked
        else (
            "cast(null as ubigint) as links_fingerprint, cast(null as ubigint) as graph_component"
        )
    )
    session.execute(
        f"""
        create or replace temp table identity_affected as
        with held as (
            select identifier_type, identifier_value, {held_columns}
            from {this}
        ),

        touched as (
            select
                coalesce(now.identifier_type, held.identifier_type) as identifier_type,
                coalesce(now.identifier_value, held.identifier_value) as identifier_value
            from identity_link_fingerprints as now
            full join held using (identifier_type, identifier_value)
            where now.links_fingerprint is distinct from held.links_fingerprint
        )

        select identifier_type, identifier_value from touched
        union
        select held.identifier_type, held.identifier_value
        from held
        where held.graph_component in (
            select held.graph_component
            from held
            inner join touched using (identifier_type, identifier_value)
        )
        """
    )


def model(dbt, session):
    dbt.config(
        materialized="incremental",
        unique_key=["identifier_type", "identifier_value"],
        incremental_strategy="merge",
        on_schema_change="sync_all_columns",
    )
    rules = _rules(dbt)
    dbt.ref("int_identity__links_collected").project(LINK_COLUMNS).create_view(
        "identity_links_now", replace=True
    )
    _fingerprints(session, rules)
    links = "select * from identity_links_now"
    written = tombstones = ""
    if dbt.is_incremental:
        this = str(dbt.this)
        columns = {row[0] for row in session.sql(f"describe {this}").fetchall()}
        _affected(session, this, tracked=columns >= TRACKED_COLUMNS)
        # The links with an affected identifier at either end.
        links += " as links where " + " or ".join(
            f"""exists (
                select 1 from identity_affected as a
                where a.identifier_type = links.{side}_type
                    and a.identifier_value = links.{side}_value
            )"""
            for side in ("left", "right")
        )
        # Only the affected identifiers' rows are written: a link to a blocked identifier
        # brings its other end along, whose row and refusals the run did not read whole.
        written = """
            where exists (
                select 1 from identity_affected as a
                where a.identifier_type = r.identifier_type
                    and a.identifier_value = r.identifier_value
            )
        """
        tombstones = f"""
            union all
            select identifier_type, identifier_value, {", ".join(["null"] * 9)}
            from identity_affected
            where not exists (
                select 1 from identity_resolved_now as r
                where r.identifier_type = identity_affected.identifier_type
                    and r.identifier_value = identity_affected.identifier_value
            )
        """
    resolution = resolve(session.sql(links).pl(), rules, components=True)
    session.register("identity_resolved_now", resolution.identifiers.to_arrow())
    session.register("identity_refused_now", resolution.refused.to_arrow())
    return session.sql(
        f"""
        with refused as ({REFUSED_LINKS_SQL.format(refused="identity_refused_now")})

        select
            r.identifier_type,
            r.identifier_value,
            r.anchor_type,
            r.anchor_value,
            r.blocked_by,
            cast(coalesce(refused.refused_links, []) as {REFUSED_LINKS_TYPE}) as refused_links,
            r.graph_component,
            f.links_fingerprint,
            {IDENTIFIER_ID_SQL} as identifier_id,
            {PERSON_ID_SQL} as person_id,
            cast(get_current_timestamp() as timestamp) as resolved_at
        from identity_resolved_now as r
        left join identity_link_fingerprints as f
            using (identifier_type, identifier_value)
        left join refused using (identifier_type, identifier_value)
        {written}
        {tombstones}
        """
    ).to_arrow_table()
