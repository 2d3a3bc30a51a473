"""Deterministic identity resolution: identifiers observed together belong to one person.

The identity graph's nodes are identifiers (``type``, ``value``) and its edges are links
observed in the sources, plus the overrides people wrote (``dbt/seeds/identity_overrides.csv``).
People are its connected components, within the rules of the project's configuration
(``vars: identity`` in ``dbt/dbt_project.yml``, read by :func:`load_rules`):

- **blocked values and patterns**: an identifier matching one links nothing and belongs to no
  one (a test address, a placeholder id a tracker sends);
- **shared identifiers**: an identifier other than a user id linked to more user ids than
  ``max_user_ids_per_identifier`` (a kiosk, a shop's own test device) links none of them;
- **limits per identifier type**: a person never holds more than ``limits[type]`` identifiers
  of a type (one ``user_id``: two people with different user ids are never merged);
- **overrides**: ``never_link`` keeps two identifiers in different people whatever links them,
  ``link`` joins two identifiers whatever the limits say.

Components that break a limit or hold a ``never_link`` are rebuilt by a union-find that applies
their links in a fixed order: ``link`` overrides first, then links that do not involve an
anonymous id, then by the time they were first observed. A link that would break a rule is left
out and recorded with the rule that refused it, so the identifier it would have joined stays with
the person it joined first, and the side holding the person's anchor identifier keeps the
person's id.

Almost every component breaks no rule, so the vectorized connected-components pass (scipy) does
nearly all the work and the union-find only sees the conflicted few.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from inboxgraph.project_files import dbt_var

# Which identifier names a person: the first present, in this order, lowest value first.
ANCHOR_PRIORITY = (
    "user_id",
    "customer_id",
    "hubspot_id",
    "salesforce_id",
    "email",
    "anonymous_id",
)
SEPARATOR = "\x1f"
# The rules of the override file's rows, as links carry them.
LINK_OVERRIDE = "override_link"
NEVER_LINK = "never_link"
# Each resolved identifier's id and stable person id (the hash of its person's anchor
# identifier), as SQL over the resolver's identifiers: the identity model and the benchmark's
# engine floor both add them. A blocked identifier has no anchor, hence no person.
IDENTIFIER_ID_SQL = "identifier_type || ':' || identifier_value"
PERSON_ID_SQL = "'p_' || left(md5(anchor_type || ':' || anchor_value), 20)"

EDGE_SCHEMA = {
    "left_type": pl.String,
    "left_value": pl.String,
    "right_type": pl.String,
    "right_value": pl.String,
    "first_observed_at": pl.Datetime("us"),
    "rule": pl.String,
}
# The links a rule refused, per left identifier, as the identity model stores them: SQL over a
# relation of Resolution.refused (the model and the benchmark's engine floor both use it).
REFUSED_LINKS_TYPE = "struct(right_type varchar, right_value varchar, reason varchar)[]"
REFUSED_LINKS_SQL = """
select
    left_type as identifier_type,
    left_value as identifier_value,
    list(struct_pack(right_type, right_value, reason) order by right_type, right_value)
        as refused_links
from {refused}
group by all
"""
REFUSAL_SCHEMA = {
    "left_type": pl.String,
    "left_value": pl.String,
    "right_type": pl.String,
    "right_value": pl.String,
    "reason": pl.String,
}


class RulesError(ValueError):
    """The identity configuration is not usable; the message says which setting and why."""


@dataclass(frozen=True)
class IdentityRules:
    """What the resolver may and may not join (see the module's docstring)."""

    limits: Mapping[str, int] = field(default_factory=lambda: {"user_id": 1})
    max_user_ids_per_identifier: int | None = None
    blocked_values: frozenset[str] = frozenset()
    blocked_patterns: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> IdentityRules:
        """Rules from the ``identity`` dbt var (a mapping; missing keys take the defaults)."""
        settings = dict(settings or {})
        limits = dict(settings.get("limits") or {"user_id": 1})
        for name, limit in limits.items():
            if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
                raise RulesError(f"identity.limits.{name} must be a whole number >= 1: {limit!r}")
        if limits.get("user_id") != 1:
            raise RulesError(
                "identity.limits.user_id must be 1: a user id is one account, and two accounts "
                "are never one person without a `link` override"
            )
        shared = settings.get("max_user_ids_per_identifier")
        if shared is not None and (not isinstance(shared, int) or shared < 1):
            raise RulesError(
                f"identity.max_user_ids_per_identifier must be a whole number >= 1: {shared!r}"
            )
        values = settings.get("blocked_values") or []
        patterns = settings.get("blocked_patterns") or []
        for pattern in patterns:
            try:
                pl.select(pl.lit("").str.contains(f"(?i)^(?:{pattern})$"))
            except pl.exceptions.ComputeError as error:
                raise RulesError(
                    f"identity.blocked_patterns: {pattern!r} is invalid: {error}"
                ) from None
        return cls(
            limits=limits,
            max_user_ids_per_identifier=shared,
            blocked_values=frozenset(str(v).strip().lower() for v in values),
            blocked_patterns=tuple(str(p) for p in patterns),
        )

    def fingerprint(self) -> str:
        """A text that changes whenever the rules do (the identity model resolves everything
        again then)."""
        return repr(
            (
                sorted(self.limits.items()),
                self.max_user_ids_per_identifier,
                sorted(self.blocked_values),
                self.blocked_patterns,
            )
        )


def load_rules(project_dir: Path | None = None) -> IdentityRules:
    """The resolver's rules in the dbt project's ``vars: identity``."""
    return IdentityRules.from_settings(dbt_var("identity", project_dir))


@dataclass(frozen=True)
class Resolution:
    """Every identifier with the anchor identifier of its person, and the links refused.

    ``identifiers``: identifier_type, identifier_value, anchor_type, anchor_value, blocked_by
    (null anchor and the reason for a blocked or shared identifier), and graph_component when
    asked. ``refused``: each link a rule kept out, with the rule (:data:`REFUSAL_SCHEMA`).
    """

    identifiers: pl.DataFrame
    refused: pl.DataFrame
    conflicted_components: int


class _UnionFind:
    """Union-find whose roots carry how many identifiers of each limited type they hold and
    which sides of ``never_link`` overrides they are on."""

    def __init__(
        self,
        size: int,
        counts: dict[int, np.ndarray],
        limits: np.ndarray,
        limited_names: list[str],
        sides: dict[int, dict[int, int]],
    ) -> None:
        self.parent = list(range(size))
        self.counts = {node: row for node, row in counts.items() if row.any()}
        self.limits = limits
        self.limited_names = limited_names
        self.sides = sides
        self.zero = np.zeros(limits.size, dtype=np.int64)

    def find(self, node: int) -> int:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def refusal(self, a: int, b: int, bound: bool) -> str | None:
        """Why roots ``a`` and ``b`` may not be joined, or None; ``bound``: limits apply."""
        sides_a, sides_b = self.sides.get(a), self.sides.get(b)
        if sides_a and sides_b:
            small, large = sorted((sides_a, sides_b), key=len)
            if any(large.get(pair, side) != side for pair, side in small.items()):
                return "override: never_link"
        if bound:
            held, added = self.counts.get(a, self.zero), self.counts.get(b, self.zero)
            # Only a side that adds identifiers of a type can break its limit (a `link`
            # override may have put a person over it already).
            over = np.flatnonzero((held + added > self.limits) & (held > 0) & (added > 0))
            if over.size:
                name = self.limited_names[int(over[0])]
                return f"limit: at most {int(self.limits[over[0]])} {name} per person"
        return None

    def union(self, a: int, b: int) -> None:
        self.parent[b] = a
        if b in self.counts:
            self.counts[a] = self.counts.get(a, self.zero) + self.counts.pop(b)
        if b in self.sides:
            merged = self.sides.setdefault(a, {})
            merged.update(self.sides.pop(b))


def _with_rule(edges: pl.DataFrame) -> pl.DataFrame:
    if "rule" not in edges.columns:
        edges = edges.with_columns(rule=pl.lit(None, dtype=pl.String))
    return edges


def _encode(edges: pl.DataFrame) -> tuple[pl.Series, np.ndarray, np.ndarray]:
    """Map every identifier to a dense integer; returns (keys by code, left codes, right codes)."""
    left = (pl.col("left_type") + SEPARATOR + pl.col("left_value")).alias("key")
    right = (pl.col("right_type") + SEPARATOR + pl.col("right_value")).alias("key")
    keys = pl.concat([edges.select(left), edges.select(right)]).get_column("key")
    codes_series = keys.rank("dense").cast(pl.Int64) - 1
    codes = codes_series.to_numpy()
    lookup = pl.DataFrame({"key": keys, "code": codes_series}).unique("code").sort("code")
    lookup = lookup.get_column("key")
    n = edges.height
    return lookup, codes[:n], codes[n:]


def _blocked_reasons(nodes: pl.DataFrame, rules: IdentityRules) -> pl.Series:
    """Why each identifier is blocked by the configuration (null when it is not)."""
    value = pl.col("identifier_value").str.strip_chars().str.to_lowercase()
    reason = pl.lit(None, dtype=pl.String)
    for pattern in reversed(rules.blocked_patterns):
        reason = (
            pl.when(value.str.contains(f"(?i)^(?:{pattern})$"))
            .then(pl.lit(f"blocked: matches pattern {pattern}"))
            .otherwise(reason)
        )
    if rules.blocked_values:
        reason = (
            pl.when(value.is_in(list(rules.blocked_values)))
            .then(pl.lit("blocked: a blocked value"))
            .otherwise(reason)
        )
    return nodes.with_columns(blocked_by=reason).get_column("blocked_by")


def _shared_reasons(
    node_type: pl.Series, left: np.ndarray, right: np.ndarray, usable: np.ndarray, limit: int
) -> pl.Series:
    """Identifiers other than user ids linked by observed links to more than ``limit`` user
    ids, with the reason (null for the rest)."""
    is_user = (node_type == "user_id").to_numpy()
    n_nodes = node_type.len()
    ends, others = left[usable], right[usable]
    node = np.concatenate([ends, others])
    other = np.concatenate([others, ends])
    keep = is_user[other] & ~is_user[node]
    pairs = pl.DataFrame({"node": node[keep], "other": other[keep]})
    users = pairs.unique().group_by("node").len().filter(pl.col("len") > limit)
    reasons = np.full(n_nodes, None, dtype=object)
    for node, count in users.iter_rows():
        reasons[node] = f"shared: linked to {count} user ids (more than {limit})"
    return pl.Series("blocked_by", reasons.tolist(), dtype=pl.String)


def _components(n_nodes: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = coo_matrix(
        (np.ones(left.size, dtype=np.int8), (left, right)), shape=(n_nodes, n_nodes)
    ).tocsr()
    return connected_components(graph, directed=False)[1]


def resolve(
    edges: pl.DataFrame, rules: IdentityRules | None = None, components: bool = False
) -> Resolution:
    """Resolve links ``(left_type, left_value, right_type, right_value, first_observed_at)``
    and an optional ``rule`` (``override_link`` and ``never_link`` are the overrides).

    A node that is only observed, never linked, is an edge from itself to itself. With
    ``components``, each identifier also gets ``graph_component``: a hash of the smallest
    identifier of its connected component over every link but those of blocked identifiers
    (``never_link`` and the links of shared identifiers included), before any rule splits it.
    A component is resolved from its own links alone, so a caller can resolve again just the
    components that new links touch.
    """
    rules = rules or IdentityRules()
    identifier_schema = {
        "identifier_type": pl.String,
        "identifier_value": pl.String,
        "anchor_type": pl.String,
        "anchor_value": pl.String,
        "blocked_by": pl.String,
    }
    if components:
        identifier_schema["graph_component"] = pl.UInt64
    if edges.is_empty():
        return Resolution(
            pl.DataFrame(schema=identifier_schema), pl.DataFrame(schema=REFUSAL_SCHEMA), 0
        )
    edges = _with_rule(edges)
    lookup, left, right = _encode(edges)
    n_nodes = lookup.len()
    parts = lookup.str.split_exact(SEPARATOR, 1)
    nodes = pl.DataFrame(
        {
            "identifier_type": parts.struct.field("field_0"),
            "identifier_value": parts.struct.field("field_1"),
        }
    )
    rule = edges.get_column("rule")
    never = (rule == NEVER_LINK).fill_null(False).to_numpy()
    manual = (rule == LINK_OVERRIDE).fill_null(False).to_numpy()
    self_loop = left == right

    config_blocked = _blocked_reasons(nodes, rules)
    is_config_blocked = config_blocked.is_not_null().to_numpy()
    grouped = ~(is_config_blocked[left] | is_config_blocked[right])
    blocked_by = config_blocked
    if rules.max_user_ids_per_identifier is not None:
        observed = grouped & ~never & ~manual & ~self_loop
        shared = _shared_reasons(
            nodes.get_column("identifier_type"),
            left,
            right,
            observed,
            rules.max_user_ids_per_identifier,
        )
        blocked_by = config_blocked.fill_null(shared)
    is_blocked = blocked_by.is_not_null().to_numpy()

    # Links to a blocked identifier are refused with its reason (the left one's first).
    reasons = blocked_by.to_numpy()
    to_blocked = (is_blocked[left] | is_blocked[right]) & ~never & ~self_loop
    refusals = [
        pl.DataFrame(
            {
                "edge": np.flatnonzero(to_blocked),
                "reason": np.where(
                    is_blocked[left[to_blocked]],
                    reasons[left[to_blocked]],
                    reasons[right[to_blocked]],
                ),
            },
            schema={"edge": pl.Int64, "reason": pl.String},
        )
    ]
    usable = ~(is_blocked[left] | is_blocked[right]) & ~never
    labels = _components(n_nodes, left[usable], right[usable])
    # The components before any rule splits them: the same, unless links were left out above.
    grouping = labels if np.array_equal(usable, grouped) else None

    # Components that break a limit or hold both sides of a never_link.
    node_type = nodes.get_column("identifier_type")
    limited = sorted(rules.limits.items())
    over = np.zeros(labels.max() + 1, dtype=bool)
    for name, limit in limited:
        of_type = (node_type == name).to_numpy()
        over |= np.bincount(labels[of_type], minlength=over.size) > limit
    pairs = np.flatnonzero(never & ~(is_blocked[left] | is_blocked[right]) & ~self_loop)
    joined = labels[left[pairs]] == labels[right[pairs]]
    over[labels[left[pairs]][joined]] = True
    conflicted = np.flatnonzero(over)

    if conflicted.size:
        in_conflict = np.isin(labels, conflicted)
        edge_ids = np.flatnonzero(usable & in_conflict[left])
        order = (
            edges[edge_ids]
            .with_columns(
                manual=pl.Series(manual[edge_ids]),
                involves_anonymous=(pl.col("left_type") == "anonymous_id")
                | (pl.col("right_type") == "anonymous_id"),
                edge=pl.Series(edge_ids),
            )
            .sort(
                pl.col("manual").not_(),
                "involves_anonymous",
                "first_observed_at",
                "left_type",
                "left_value",
                "right_type",
                "right_value",
                nulls_last=True,
            )
            .get_column("edge")
            .to_numpy()
        )
        roots, refused = _constrained_union(
            nodes, np.flatnonzero(in_conflict), limited, left, right, order, manual, pairs
        )
        refusals.append(refused)
        # New labels for nodes of conflicted components, past every existing label.
        labels = labels.copy()
        conflicted_nodes = np.flatnonzero(in_conflict)
        labels[conflicted_nodes] = labels.max() + 1 + roots

    nodes = nodes.with_columns(label=labels, blocked_by=blocked_by)
    priority = pl.col("identifier_type").replace_strict(
        {name: rank for rank, name in enumerate(ANCHOR_PRIORITY)},
        default=len(ANCHOR_PRIORITY),
        return_dtype=pl.Int32,
    )
    anchors = (
        nodes.filter(pl.col("blocked_by").is_null())
        .with_columns(priority=priority)
        .sort("label", "priority", "identifier_value")
        .group_by("label", maintain_order=True)
        .first()
        .select("label", anchor_type="identifier_type", anchor_value="identifier_value")
    )
    identifiers = nodes.join(anchors, on="label", how="left").drop("label")
    if components:
        if grouping is None:
            grouping = _components(n_nodes, left[grouped], right[grouped])
        graph_component = (
            pl.DataFrame({"key": lookup, "label": grouping})
            .select(pl.col("key").min().over("label").hash(seed=0))
            .to_series()
        )
        identifiers = identifiers.with_columns(graph_component=graph_component)
    refused = pl.concat(refusals)
    refused = (
        edges[refused.get_column("edge")]
        .select("left_type", "left_value", "right_type", "right_value")
        .with_columns(reason=refused.get_column("reason"))
    )
    return Resolution(identifiers.select(identifier_schema.keys()), refused, int(conflicted.size))


def _constrained_union(
    nodes: pl.DataFrame,
    members: np.ndarray,
    limited: list[tuple[str, int]],
    left: np.ndarray,
    right: np.ndarray,
    order: np.ndarray,
    manual: np.ndarray,
    pairs: np.ndarray,
) -> tuple[np.ndarray, pl.DataFrame]:
    """Union-find over the edges in ``order`` within the rules; returns each member's root
    and the edges refused with their reasons."""
    n_nodes = nodes.height
    node_type = nodes.get_column("identifier_type").to_numpy()
    counts = np.zeros((members.size, len(limited)), dtype=np.int64)
    for column, (name, _) in enumerate(limited):
        counts[:, column] = node_type[members] == name
    sides: dict[int, dict[int, int]] = {}
    for pair, edge in enumerate(pairs):
        sides.setdefault(int(left[edge]), {})[pair] = 0
        sides.setdefault(int(right[edge]), {})[pair] = 1
    uf = _UnionFind(
        n_nodes,
        dict(zip(members.tolist(), counts, strict=True)),
        np.array([limit for _, limit in limited], dtype=np.int64),
        [name for name, _ in limited],
        sides,
    )
    refused_edges: list[int] = []
    refused_reasons: list[str] = []
    for edge in order.tolist():
        a, b = uf.find(int(left[edge])), uf.find(int(right[edge]))
        if a == b:
            continue
        reason = uf.refusal(a, b, bound=not manual[edge])
        if reason is not None:
            refused_edges.append(edge)
            refused_reasons.append(reason)
            continue
        uf.union(a, b)
    roots = np.fromiter((uf.find(int(i)) for i in members), dtype=np.int64, count=members.size)
    refused = pl.DataFrame(
        {"edge": refused_edges, "reason": refused_reasons},
        schema={"edge": pl.Int64, "reason": pl.String},
    )
    return roots, refused
