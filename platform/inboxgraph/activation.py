"""Audience exports for email service providers: deltas against what was last exported.

The platform keeps, per ESP, the membership it last exported (``exports/_state/<esp>.parquet``).
An export compares the current audience with it: people added and people removed, per segment.
Files are written only for a non-empty delta, then the state is replaced, so running an export
twice with no change in between produces nothing the second time. ``full`` exports every current
member as added (and the state is reset to the current audience).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl

from inboxgraph.storage import write_atomic, write_bytes_atomic

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


def _csv(header: list[str], rows: Iterator[list[object]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def _products(value: object) -> str:
    return "|".join(value) if isinstance(value, list) else ""


def _csv_delta_files(
    segment: str,
    delta: Delta,
    added: tuple[list[str], Callable[[dict], list[object]]],
    removed: tuple[list[str], Callable[[dict], list[object]]],
) -> dict[str, bytes]:
    """``<segment>-add.csv`` and ``<segment>-remove.csv``, each only when it has rows; the
    ESP decides the header and the row of each."""
    files = {}
    for suffix, rows, (header, row) in (
        ("add", delta.added, added),
        ("remove", delta.removed, removed),
    ):
        if not rows.is_empty():
            files[f"{segment}-{suffix}.csv"] = _csv(
                header, (row(r) for r in rows.iter_rows(named=True))
            )
    return files


def mailchimp_files(segment: str, delta: Delta) -> dict[str, bytes]:
    """Mailchimp audience import CSVs: subscribed contacts to add (tagged with the segment),
    and addresses whose segment tag is removed."""
    return _csv_delta_files(
        segment,
        delta,
        added=(
            [
                "Email Address",
                "First Name",
                "Last Name",
                "Tags",
                "TOP_CATEGORY",
                "PRODUCTS",
                "LTV_TIER",
            ],
            lambda r: [
                r["email"],
                r["first_name"] or "",
                r["last_name"] or "",
                segment,
                r["top_category"] or "",
                _products(r["featured_products"]),
                r["lifetime_value_tier"] or "",
            ],
        ),
        removed=(["Email Address", "Tags"], lambda r: [r["email"], segment]),
    )


def klaviyo_files(segment: str, delta: Delta) -> dict[str, bytes]:
    """Klaviyo profile import CSVs (one list per segment): profiles to add, emails to remove."""
    return _csv_delta_files(
        segment,
        delta,
        added=(
            [
                "Email",
                "First Name",
                "Last Name",
                "top_category",
                "featured_products",
                "lifetime_value_tier",
            ],
            lambda r: [
                r["email"],
                r["first_name"] or "",
                r["last_name"] or "",
                r["top_category"] or "",
                _products(r["featured_products"]),
                r["lifetime_value_tier"] or "",
            ],
        ),
        removed=(["Email"], lambda r: [r["email"]]),
    )


def braze_batches(segment: str, delta: Delta) -> list[dict]:
    """Braze ``/users/track`` request bodies, at most 75 attribute objects each."""
    objects = [
        {
            "external_id": r["person_id"],
            "email": r["email"],
            "first_name": r["first_name"],
            "top_category": r["top_category"],
            "featured_products": r["featured_products"] or [],
            "lifetime_value_tier": r["lifetime_value_tier"],
            "inboxgraph_segments": {"add": [segment]},
        }
        for r in delta.added.iter_rows(named=True)
    ] + [
        {"external_id": r["person_id"], "inboxgraph_segments": {"remove": [segment]}}
        for r in delta.removed.iter_rows(named=True)
    ]
    return [
        {"attributes": objects[i : i + BRAZE_BATCH_LIMIT]}
        for i in range(0, len(objects), BRAZE_BATCH_LIMIT)
    ]


def braze_files(segment: str, delta: Delta) -> dict[str, bytes]:
    return {
        f"{segment}-batch-{n:05d}.json": orjson.dumps(body, option=orjson.OPT_INDENT_2)
        for n, body in enumerate(braze_batches(segment, delta), start=1)
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
        folder = self.root / esp / export_id
        return [str(write_bytes_atomic(folder / name, data)) for name, data in files.items()]


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
