"""Identity resolution: every identifier with the anchor identifier of its person.

The graph algorithm lives in inboxgraph.identity (connected components with the rule that a
person never holds two user ids); this model feeds it the collected links.
"""

from inboxgraph.identity import resolve


def model(dbt, session):
    dbt.config(materialized="table")
    links = (
        dbt.ref("int_identity__links_collected")
        .pl()
        .select("left_type", "left_value", "right_type", "right_value", "first_observed_at")
    )
    return resolve(links).identifiers.to_arrow()
