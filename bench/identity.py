"""Identity resolution against the floor: scipy connected components on the same edges.

Generates N identifier observations (links between identifiers, as the warehouse collects
them: devices to users, users to emails, CRM and shop records to emails, lone observations),
with shared devices that link two user ids, then measures in one run:

- floor_cc: ``scipy.sparse.csgraph.connected_components`` on edges already given as integers;
- floor: the same plus mapping the identifier strings to integers (polars), the least work
  anything taking string edges must do;
- inboxgraph: ``inboxgraph.identity.resolve`` (encoding, components, the user-id constraint,
  anchors), the function the warehouse's identity model runs.

Prints the times and the ratio inboxgraph / floor (target: at most 4).

    python bench/identity.py [--observations 10000000] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import time
from datetime import datetime

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from inboxgraph.identity import resolve

TARGET_RATIO = 4.0


def observations(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    people = max(n // 4, 1)
    person = rng.integers(0, people, n)
    device = rng.integers(0, 3, n)
    kind = rng.choice(6, n, p=[0.5, 0.2, 0.1, 0.05, 0.05, 0.1])
    # A shared device: 0.1% of device links point at the next person's user id.
    other = np.where(rng.random(n) < 0.001, (person + 1) % people, person)
    p = pl.Series(person).cast(pl.String)
    o = pl.Series(other).cast(pl.String)
    d = pl.Series(device).cast(pl.String)
    frame = pl.DataFrame({"kind": kind, "p": p, "o": o, "d": d})
    anon = "anon-" + pl.col("p") + "-" + pl.col("d")
    user = "user-" + pl.col("o")
    email = "person" + pl.col("p") + "@example.com"
    left_type = (
        pl.when(pl.col("kind") <= 1)
        .then(pl.lit("anonymous_id"))
        .when(pl.col("kind") == 2)
        .then(pl.lit("user_id"))
        .when(pl.col("kind") == 3)
        .then(pl.lit("hubspot_id"))
        .when(pl.col("kind") == 4)
        .then(pl.lit("customer_id"))
        .otherwise(pl.lit("email"))
    )
    left_value = (
        pl.when(pl.col("kind") <= 1)
        .then(anon)
        .when(pl.col("kind") == 2)
        .then("user-" + pl.col("p"))
        .when(pl.col("kind") == 3)
        .then("hs-" + pl.col("p"))
        .when(pl.col("kind") == 4)
        .then("cu-" + pl.col("p"))
        .otherwise(email)
    )
    right_type = (
        pl.when(pl.col("kind") == 0)
        .then(pl.lit("user_id"))
        .when(pl.col("kind") == 1)
        .then(pl.lit("anonymous_id"))
        .when(pl.col("kind") == 5)
        .then(pl.lit("email"))
        .otherwise(pl.lit("email"))
    )
    right_value = (
        pl.when(pl.col("kind") == 0)
        .then(user)
        .when(pl.col("kind") == 1)
        .then(anon)
        .otherwise(email)
    )
    start = datetime(2026, 1, 1)
    return frame.select(
        left_type=left_type,
        left_value=left_value,
        right_type=right_type,
        right_value=right_value,
        first_observed_at=pl.lit(start) + pl.duration(seconds=pl.Series(rng.integers(0, 10**7, n))),
    )


def floor(edges: pl.DataFrame) -> tuple[float, float, int]:
    """Seconds for (encoding + components, components alone), and the component count."""
    started = time.perf_counter()
    keys = pl.concat(
        [
            edges.select(key=pl.col("left_type") + "\x1f" + pl.col("left_value")),
            edges.select(key=pl.col("right_type") + "\x1f" + pl.col("right_value")),
        ]
    ).get_column("key")
    codes = keys.cast(pl.Categorical).to_physical().cast(pl.Int64).to_numpy()
    n_nodes = int(codes.max()) + 1
    left, right = codes[: edges.height], codes[edges.height :]
    encoded = time.perf_counter()
    graph = coo_matrix(
        (np.ones(left.size, dtype=np.int8), (left, right)), shape=(n_nodes, n_nodes)
    ).tocsr()
    count, _ = connected_components(graph, directed=False)
    done = time.perf_counter()
    return done - started, done - encoded, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--observations", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    args = parser.parse_args()

    edges = observations(args.observations, args.seed)
    print(f"{edges.height:,} observations")
    floors, ccs, ours = [], [], []
    components = people = conflicted = 0
    for _ in range(args.repeat):
        gc.collect()
        total, cc, components = floor(edges)
        floors.append(total)
        ccs.append(cc)
        gc.collect()
        started = time.perf_counter()
        result = resolve(edges)
        ours.append(time.perf_counter() - started)
        people = result.identifiers.select(
            pl.struct("anchor_type", "anchor_value").n_unique()
        ).item()
        conflicted = result.conflicted_components
    best_floor, best_cc, best_ours = min(floors), min(ccs), min(ours)
    ratio = best_ours / best_floor
    print(f"floor_cc   (scipy components on integer edges) {best_cc:8.2f} s")
    print(
        f"floor      (string encoding + scipy components) {best_floor:8.2f} s  "
        f"{components:,} components"
    )
    print(
        f"inboxgraph (inboxgraph.identity.resolve)        {best_ours:8.2f} s  "
        f"{people:,} people, {conflicted:,} components split by the user-id rule"
    )
    print(
        f"ratio inboxgraph / floor: {ratio:.2f} (target <= {TARGET_RATIO}); "
        f"inboxgraph / floor_cc: {best_ours / best_cc:.2f}"
    )
    print("PASS" if ratio <= TARGET_RATIO else "FAIL")


if __name__ == "__main__":
    main()
