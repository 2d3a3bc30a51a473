"""Audience exports for email service providers: deltas against what was last exported.

The platform keeps, per ESP, the membership it last exported (``exports/_state/<esp>.parquet``).
An export compares the current audience with it: people added and people removed, per segment.
Files are written only for a non-empty delta, then the state is replaced, so running an export
twice with no change in between produces nothing the second time. ``full`` exports every current
member as added (and the state is reset to the current audience).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from inboxgraph.storage import stale_temporaries, write_atomic, write_folder_atomic

BRAZE_BATCH_LIMIT = 75  # Braze /users/track: at most 75 attribute objects per request.
STATE_SCHEMA = {"segment_id": pl.String, "person_id": pl.String, "email": pl.String}
MEMBER_COLUMNS = (
    "segment_id",
    "person_id",
    "email",
    "first_name",
    "last_name",
    "top_category",
    "featured_products",
    "lifetime_value_tier",
)


def mask_email(email: str | None) -> str:
    """An address fit for logs and metadata: first letter, a hash, the domain."""
    if not email or "@" not in email:
        return "<none>"
    local, domain = email.rsplit("@", 1)
    digest = hashlib.sha256(email.encode()).hexdigest()[:8]
    return f"{local[:1]}***{digest}@{domain}"


@dataclass
class Delta:
    added: pl.DataFrame
    removed: pl.DataFrame

    @property
    def empty(self) -> bool:
        return self.added.is_empty() and self.removed.is_empty()


def compute_delta(current: pl.DataFrame, previous: pl.DataFrame, full: bool = False) -> Delta:
    """Members to add (with their fields) and to remove, by segment and person."""
    keys = ["segment_id", "person_id"]
    if full:
        return Delta(current, previous.join(current, on=keys, how="anti"))
    added = current.join(previous.select(keys), on=keys, how="anti")
    removed = previous.join(current.select(keys), on=keys, how="anti")
    return Delta(added.sort(keys), removed.sort(keys))


def _text(column: str) -> pl.Expr:
    """A field written bare when empty: polars writes a null as nothing, an empty string
    as ``""``."""
    value = pl.col(column)
    return pl.when(value != "").then(value)


def _products() -> pl.Expr:
    joined = pl.col("featured_products").list.join("|")
    return pl.when(joined != "").then(joined)


def _csv_delta_files(
    segment: str,
    delta: Delta,
    added: dict[str, pl.Expr],
    removed: dict[str, pl.Expr],
) -> dict[str, bytes]:
    """``<segment>-add.csv`` and ``<segment>-remove.csv``, each only when it has rows; the
    ESP decides the columns of each (header -> expression over the delta's rows)."""
    files = {}
    for suffix, rows, columns in (
        ("add", delta.added, added),
        ("remove", delta.removed, removed),
    ):
        if not rows.is_empty():
            files[f"{segment}-{suffix}.csv"] = rows.select(**columns).write_csv().encode()
    return files


def mailchimp_files(segment: str, delta: Delta) -> dict[str, bytes]:
    """Mailchimp audience import CSVs: subscribed contacts to add (tagged with the segment),
    and addresses whose segment tag is removed."""
    tag = pl.lit(segment, dtype=pl.String)
    return _csv_delta_files(
        segment,
        delta,
        added={
            "Email Address": _text("email"),
            "First Name": _text("first_name"),
            "Last Name": _text("last_name"),
            "Tags": tag,
            "TOP_CATEGORY": _text("top_category"),
            "PRODUCTS": _products(),
            "LTV_TIER": _text("lifetime_value_tier"),
        },
        removed={"Email Address": _text("email"), "Tags": tag},
    )


def klaviyo_files(segment: str, delta: Delta) -> dict[str, bytes]:
    """Klaviyo profile import CSVs (one list per segment): profiles to add, emails to remove."""
    return _csv_delta_files(
        segment,
        delta,
        added={
            "Email": _text("email"),
            "First Name": _text("first_name"),
            "Last Name": _text("last_name"),
            "top_category": _text("top_category"),
            "featured_products": _products(),
            "lifetime_value_tier": _text("lifetime_value_tier"),
        },
        removed={"Email": _text("email")},
    )


def _braze_objects(segment: str, delta: Delta) -> list[str]:
    """Braze user attribute objects as JSON text, added people first (encoded by polars)."""
    segments = pl.lit([segment], dtype=pl.List(pl.String))
    added = delta.added.select(
        pl.struct(
            external_id="person_id",
            email="email",
            first_name="first_name",
            top_category="top_category",
            featured_products=pl.col("featured_products").fill_null(
                pl.lit([], dtype=pl.List(pl.String))
            ),
            lifetime_value_tier="lifetime_value_tier",
            inboxgraph_segments=pl.struct(add=segments),
        ).struct.json_encode()
    )
    removed = delta.removed.select(
        pl.struct(
            external_id="person_id", inboxgraph_segments=pl.struct(remove=segments)
        ).struct.json_encode()
    )
    return added.to_series().to_list() + removed.to_series().to_list()


def braze_bodies(segment: str, delta: Delta) -> list[bytes]:
    """Braze ``/users/track`` request bodies (JSON), at most 75 attribute objects each."""
    objects = _braze_objects(segment, delta)
    return [
        ('{"attributes":[' + ",".join(objects[i : i + BRAZE_BATCH_LIMIT]) + "]}").encode()
        for i in range(0, len(objects), BRAZE_BATCH_LIMIT)
    ]


def braze_files(segment: str, delta: Delta) -> dict[str, bytes]:
    return {
        f"{segment}-batch-{n:05d}.json": body
        for n, body in enumerate(braze_bodies(segment, delta), start=1)
    }


FORMATS = {"mailchimp": mailchimp_files, "klaviyo": klaviyo_files, "braze": braze_files}


class ExportStore:
    """Export files and the per-ESP state, under one folder (``$INBOXGRAPH_HOME/exports``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def state_path(self, esp: str) -> Path:
        return self.root / "_state" / f"{esp}.parquet"

    def read_state(self, esp: str) -> pl.DataFrame:
        path = self.state_path(esp)
        return pl.read_parquet(path) if path.exists() else pl.DataFrame(schema=STATE_SCHEMA)

    def write_state(self, esp: str, members: pl.DataFrame) -> None:
        state = members.select(list(STATE_SCHEMA)).sort("segment_id", "person_id")
        write_atomic(self.state_path(esp), state.write_parquet)

    def write_files(self, esp: str, export_id: str, files: dict[str, bytes]) -> list[str]:
        """One export's files, in ``<esp>/<export_id>/``; the folder appears whole or not at all.

        The hidden folder of an export that died is removed by a later export of the ESP once
        it is an hour old (an export still writing is never that slow).
        """
        folder = self.root / esp
        for stale in stale_temporaries(folder):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        return [str(path) for path in write_folder_atomic(folder / export_id, files)]


def export(
    store: ExportStore, esp: str, members: pl.DataFrame, export_id: str, full: bool = False
) -> dict[str, dict[str, int]]:
    """Write one ESP's delta files per segment and replace its state; returns counts."""
    subscribed = members.select(list(MEMBER_COLUMNS))
    delta = compute_delta(subscribed, store.read_state(esp), full=full)
    counts: dict[str, dict[str, int]] = {}
    segments = sorted(set(delta.added["segment_id"]) | set(delta.removed["segment_id"]))
    files: dict[str, bytes] = {}
    for segment in segments:
        part = Delta(
            delta.added.filter(pl.col("segment_id") == segment),
            delta.removed.filter(pl.col("segment_id") == segment),
        )
        counts[segment] = {"added": part.added.height, "removed": part.removed.height}
        files.update(FORMATS[esp](segment, part))
    paths = store.write_files(esp, export_id, files) if files else []
    store.write_state(esp, subscribed)
    counts["_files"] = {"written": len(paths)}
    return counts
