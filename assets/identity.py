"""The identity graph's health, as asset checks on marts.identity_map.

``identity_stability`` is blocking: when more people were merged or split since the identity map
activation last accepted than var identity's ``health.max_changed_share`` allows (a bad batch),
every ESP export waits until a run accepts the change (run tag
``inboxgraph/accept_identity_changes=true``; ``inboxgraph run --accept-identity-changes``).
``identity_graph_size`` warns when a person holds too many identifiers, and
``identity_merges_and_splits`` when more people were merged or split than configured.

``marts.identity_suggestions`` (splink) lists probable duplicates for review. It is not part of
the nightly refresh: materialize it from the UI or with ``inboxgraph identity suggest``.
"""

from collections.abc import Iterator

import dagster as dg

from inboxgraph.activation import mask_email
from inboxgraph.assets.warehouse import WAREHOUSE_POOL
from inboxgraph.explain import describe, explain_person
from inboxgraph.identity_health import (
    ACCEPT_TAG,
    HealthSettings,
    Shape,
    Stability,
    accept,
    load_health,
    measure_shape,
    measure_stability,
)
from inboxgraph.resources.warehouse import WarehouseResource
from inboxgraph.suggestions import suggest

IDENTITY_MAP = dg.AssetKey(["marts", "identity_map"])
STABILITY = dg.AssetCheckKey(IDENTITY_MAP, "identity_stability")
SIZE = dg.AssetCheckKey(IDENTITY_MAP, "identity_graph_size")
CHURN = dg.AssetCheckKey(IDENTITY_MAP, "identity_merges_and_splits")
# The largest merges whose explanation the check's metadata carries.
EXPLAINED_MERGES = 3


def _masked(identifier_type: str, value: str) -> str:
    """Metadata outlives an erasure in the run history: addresses are masked there."""
    return mask_email(value) if identifier_type == "email" else value


def _table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _stability_result(
    stability: Stability, settings: HealthSettings, accepted: bool, explained: str
) -> dg.AssetCheckResult:
    within = stability.changed_share <= settings.max_changed_share
    if not stability.baseline:
        description = "no accepted identity map yet: this one is accepted"
    elif within:
        description = (
            f"{stability.changed_share:.2%} of the people with an address merged or split "
            f"(at most {settings.max_changed_share:.0%})"
        )
    elif accepted:
        description = (
            f"{stability.changed_share:.2%} of the people with an address merged or split, "
            f"accepted by this run ({ACCEPT_TAG})"
        )
    else:
        description = (
            f"{stability.changed_share:.2%} of the people with an address merged or split, more "
            f"than {settings.max_changed_share:.0%}: exports wait until a run accepts the change "
            f"(inboxgraph run --accept-identity-changes, or run tag {ACCEPT_TAG}=true)"
        )
    metadata: dict[str, object] = {
        "changed_share": stability.changed_share,
        "changed_people": stability.changed_people,
        "renamed_people": stability.renamed_people,
        "people_with_address": stability.addressed_people,
        "merges": stability.merges,
        "splits": stability.splits,
        "threshold": settings.max_changed_share,
        "accepted_by_run": accepted and not within,
    }
    if stability.largest_merges:
        metadata["largest_merges"] = dg.MetadataValue.md(
            _table(stability.largest_merges, ["person_id", "people_merged", "identifiers"])
        )
    if stability.largest_splits:
        metadata["largest_splits"] = dg.MetadataValue.md(
            _table(stability.largest_splits, ["person_id", "people_now", "identifiers"])
        )
    if explained:
        metadata["largest_merges_explained"] = dg.MetadataValue.md(explained)
    return dg.AssetCheckResult(
        asset_key=IDENTITY_MAP,
        check_name=STABILITY.name,
        passed=within or accepted,
        severity=dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


def _warning(
    key: dg.AssetCheckKey, problems: list[str], fine: str, metadata: dict[str, object]
) -> dg.AssetCheckResult:
    """A warning check's result: failed with its problems, or passed with ``fine``."""
    return dg.AssetCheckResult(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=not problems,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(problems) or fine,
        metadata=metadata,
    )


def _size_result(shape: Shape, settings: HealthSettings) -> dg.AssetCheckResult:
    problems = []
    if shape.largest > settings.max_identifiers_per_person:
        problems.append(
            f"the largest person holds {shape.largest} identifiers "
            f"(more than {settings.max_identifiers_per_person})"
        )
    if shape.p99 > settings.max_identifiers_p99:
        problems.append(
            f"the 99th percentile is {shape.p99:g} identifiers "
            f"(more than {settings.max_identifiers_p99})"
        )
    return _warning(
        SIZE,
        problems,
        f"largest person {shape.largest} identifiers, p99 {shape.p99:g}",
        {
            "people": shape.people,
            "identifiers": shape.identifiers,
            "largest_person_identifiers": shape.largest,
            "identifiers_p99": shape.p99,
            "largest_people": dg.MetadataValue.json(shape.largest_people),
        },
    )


def _churn_result(stability: Stability, settings: HealthSettings) -> dg.AssetCheckResult:
    problems = [
        f"{count} {kind} (more than {limit})"
        for kind, count, limit in (
            ("merges", stability.merges, settings.max_merges),
            ("splits", stability.splits, settings.max_splits),
        )
        if count > limit
    ]
    return _warning(
        CHURN,
        problems,
        f"{stability.merges} merges, {stability.splits} splits since the accepted map",
        {
            "merges": stability.merges,
            "splits": stability.splits,
            "max_merges": settings.max_merges,
            "max_splits": settings.max_splits,
        },
    )


@dg.multi_asset_check(
    name="identity_health",
    specs=[
        dg.AssetCheckSpec(
            STABILITY.name,
            asset=IDENTITY_MAP,
            blocking=True,
            description="At most var identity's health.max_changed_share of the people with an "
            "email address "
            "were merged or split since the identity map activation last accepted; beyond it, "
            "exports wait for a run tagged inboxgraph/accept_identity_changes=true.",
        ),
        dg.AssetCheckSpec(
            CHURN.name,
            asset=IDENTITY_MAP,
            description="Since the identity map activation last accepted, at most var "
            "identity's health.max_merges people were merged and health.max_splits split.",
        ),
        dg.AssetCheckSpec(
            SIZE.name,
            asset=IDENTITY_MAP,
            description="No person holds more identifiers than var identity's "
            "health.max_identifiers_per_person, and the 99th percentile stays within "
            "health.max_identifiers_p99.",
        ),
    ],
    can_subset=True,
    pool=WAREHOUSE_POOL,
)
def identity_health(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> Iterator[dg.AssetCheckResult]:
    """The identity graph's stability (blocking), merges and splits, and size (warnings)."""
    settings = load_health()
    selected = context.selected_asset_check_keys
    accepted = context.run.tags.get(ACCEPT_TAG, "").lower() == "true"
    with warehouse.connect(read_only=False) as con:
        if SIZE in selected:
            yield _size_result(measure_shape(con), settings)
        if not {STABILITY, CHURN} & selected:
            return
        stability = measure_stability(con)
        if CHURN in selected:
            yield _churn_result(stability, settings)
        if STABILITY not in selected:
            return
        explained = "\n\n".join(
            "```\n"
            + "\n".join(describe(explain_person(con, merge["person_id"]), _masked))
            + "\n```"
            for merge in stability.largest_merges[:EXPLAINED_MERGES]
        )
        result = _stability_result(stability, settings, accepted, explained)
        if result.passed:
            accept(con)
        else:
            context.log.warning(result.description)
        yield result


identity_checks = [identity_health]

SUGGESTIONS = dg.AssetKey(["marts", "identity_suggestions"])


class SuggestionsConfig(dg.Config):
    """``threshold``: the lowest match probability listed."""

    threshold: float = 0.9


@dg.asset(
    key=SUGGESTIONS,
    group_name="identity",
    deps=[
        dg.AssetKey(["marts", "customer_profiles"]),
        IDENTITY_MAP,
        dg.AssetKey(["marts", "identity_links"]),
    ],
    kinds={"splink", "duckdb"},
    tags={"layer": "marts"},
    pool=WAREHOUSE_POOL,
)
def identity_suggestions(
    context: dg.AssetExecutionContext, config: SuggestionsConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Probable duplicate people no deterministic rule links (the same name and city with
    another or a typo'd address), scored by splink, for review: accepting one is adding a
    `link` override. On demand, not nightly."""
    if not 0 < config.threshold <= 1:
        raise dg.Failure(f"threshold must be in (0, 1]: {config.threshold}")
    pairs = suggest(warehouse.resolved_path, config.threshold)
    with warehouse.connect(read_only=False) as con:
        con.register("suggested_pairs", pairs)
        con.execute(
            "create or replace table marts.identity_suggestions as "
            "select *, cast(get_current_timestamp() as timestamp) as suggested_at "
            "from suggested_pairs"
        )
    context.log.info(f"{pairs.num_rows} suggested pairs at match probability >= {config.threshold}")
    top = [
        {
            "left": _masked("email", row["left_email"]),
            "right": _masked("email", row["right_email"]),
            "match_probability": round(row["match_probability"], 4),
        }
        for row in pairs.slice(0, 10).to_pylist()
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": pairs.num_rows,
            "threshold": config.threshold,
            "most_probable": dg.MetadataValue.md(
                _table(top, ["left", "right", "match_probability"]) if top else "none"
            ),
        }
    )
