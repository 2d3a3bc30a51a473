"""Audiences delivered to ESPs through their APIs: each sync sends the changes since what the
ESP last acknowledged, batch by batch.

What an ESP holds is kept in the warehouse, ``activation.sync_state`` (destination, segment,
person, address, a hash of the fields sent, the ESP's own id for the person): one row per
segment membership the ESP acknowledged. A sync compares the current audience (subscribed
members of ``marts.audience_members``) with it, per person: the segments to add and to remove,
and whether the fields changed. Changes go out in the ESP's batches; after each batch, in one
transaction, the state takes exactly the people the ESP acknowledged. So a sync killed midway
and run again sends only what was not acknowledged, and a person the ESP refused (an invalid
address, a compliance state) is recorded with the ESP's reason and tried again next time.

``marts.sync_log`` has one row per sync, destination and segment (added, removed, unchanged,
failed), ``marts.sync_errors`` one per refused person with the ESP's reason.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import duckdb
import polars as pl

FIELDS = ("first_name", "last_name", "top_category", "featured_products", "lifetime_value_tier")

SCHEMA_SQL = """
create schema if not exists activation;
create table if not exists activation.sync_state (
    destination varchar not null,
    segment_id varchar not null,
    person_id varchar not null,
    email varchar not null,
    fields_hash varchar not null,
    esp_ref varchar,
    synced_at timestamptz not null
);
create table if not exists activation.suppression_state (
    destination varchar not null,
    email varchar not null,
    pushed_at timestamptz not null
);
create table if not exists marts.sync_log (
    run_id varchar not null,
    synced_at timestamptz not null,
    destination varchar not null,
    segment_id varchar not null,
    added bigint not null,
    removed bigint not null,
    unchanged bigint not null,
    failed bigint not null,
    dry_run boolean not null
);
create table if not exists marts.sync_errors (
    run_id varchar not null,
    synced_at timestamptz not null,
    destination varchar not null,
    person_id varchar not null,
    email varchar,
    segments varchar[],
    reason varchar not null
);
"""


@dataclass
class Change:
    """One person's change at one ESP."""

    person_id: str
    email: str
    fields: dict[str, object]
    segments: list[str]  # every segment the person is in now (empty: in none any more)
    add: list[str]
    remove: list[str]
    fields_hash: str
    esp_ref: str | None = None  # the ESP's id for the person, from the last sync

    @property
    def leaving(self) -> bool:
        return not self.segments


@dataclass
class Outcome:
    """What the ESP said about one batch: acknowledged people (with the ESP's id for each,
    when it has one) and refused people with its reason."""

    acknowledged: dict[str, str | None] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)


class Destination(Protocol):
    name: str
    batch_size: int

    def send(self, batch: list[Change]) -> Outcome: ...

    def suppress(self, emails: list[str]) -> set[str]:
        """Put ``emails`` in the ESP's own suppression; returns those it acknowledged."""
        ...


def fields_hash(row: dict[str, object]) -> str:
    payload = json.dumps([row.get(name) for name in FIELDS], default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute(SCHEMA_SQL)


def plan(
    connection: duckdb.DuckDBPyConnection, destination: str, audience: pl.DataFrame
) -> tuple[list[Change], dict[str, int]]:
    """The changes to send, one per person, and the memberships unchanged per segment."""
    held = connection.execute(
        "select segment_id, person_id, email, fields_hash, esp_ref from activation.sync_state "
        "where destination = ?",
        [destination],
    ).pl()
    wanted: dict[str, dict] = {}
    for row in audience.iter_rows(named=True):
        person = wanted.setdefault(
            row["person_id"],
            {"email": row["email"], "fields": {n: row.get(n) for n in FIELDS}, "segments": set()},
        )
        person["segments"].add(row["segment_id"])
    had: dict[str, dict] = {}
    for row in held.iter_rows(named=True):
        person = had.setdefault(
            row["person_id"],
            {
                "email": row["email"],
                "hash": row["fields_hash"],
                "ref": row["esp_ref"],
                "segments": set(),
            },
        )
        person["segments"].add(row["segment_id"])
    changes: list[Change] = []
    unchanged: dict[str, int] = {}
    for person_id in sorted(wanted.keys() | had.keys()):
        now, before = wanted.get(person_id), had.get(person_id)
        segments = now["segments"] if now else set()
        previous = before["segments"] if before else set()
        digest = fields_hash(now["fields"]) if now else ""
        same_fields = before is not None and now is not None and before["hash"] == digest
        same_email = before is not None and now is not None and before["email"] == now["email"]
        if segments == previous and same_fields and same_email:
            for segment in segments:
                unchanged[segment] = unchanged.get(segment, 0) + 1
            continue
        for segment in segments & previous:  # kept, its fields sent again
            unchanged[segment] = unchanged.get(segment, 0) + 1
        changes.append(
            Change(
                person_id=person_id,
                email=(now or before)["email"],
                fields=now["fields"] if now else {},
                segments=sorted(segments),
                add=sorted(segments - previous),
                remove=sorted(previous - segments),
                fields_hash=digest,
                esp_ref=before["ref"] if before else None,
            )
        )
    return changes, unchanged


def _record(
    connection: duckdb.DuckDBPyConnection,
    destination: str,
    batch: list[Change],
    outcome: Outcome,
) -> None:
    """The acknowledged people's state, in one transaction."""
    done = [c for c in batch if c.person_id in outcome.acknowledged]
    if not done:
        return
    now = datetime.now(UTC)
    rows = [
        (
            destination,
            segment,
            c.person_id,
            c.email,
            c.fields_hash,
            outcome.acknowledged[c.person_id] or c.esp_ref,
            now,
        )
        for c in done
        for segment in c.segments
    ]
    connection.execute("begin transaction")
    try:
        connection.executemany(
            "delete from activation.sync_state where destination = ? and person_id = ?",
            [(destination, c.person_id) for c in done],
        )
        if rows:
            connection.executemany(
                "insert into activation.sync_state values (?, ?, ?, ?, ?, ?, ?)", rows
            )
        connection.execute("commit")
    except BaseException:
        connection.execute("rollback")
        raise


@dataclass
class SyncReport:
    destination: str
    dry_run: bool
    added: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    errors: list[tuple[Change, str]] = field(default_factory=list)
    batches: int = 0
    people: int = 0
    suppressed: int = 0

    def count(self, change: Change, ok: bool) -> None:
        if ok:
            for segment in change.add:
                self.added[segment] = self.added.get(segment, 0) + 1
            for segment in change.remove:
                self.removed[segment] = self.removed.get(segment, 0) + 1
        else:
            for segment in change.add + change.remove or change.segments:
                self.failed[segment] = self.failed.get(segment, 0) + 1

    @property
    def segments(self) -> list[str]:
        return sorted(
            self.added.keys() | self.removed.keys() | self.unchanged.keys() | self.failed.keys()
        )

    def totals(self) -> dict[str, int]:
        return {
            "added": sum(self.added.values()),
            "removed": sum(self.removed.values()),
            "unchanged": sum(self.unchanged.values()),
            "failed": sum(self.failed.values()),
        }

    def per_segment(self) -> dict[str, dict[str, int]]:
        return {
            s: {
                "added": self.added.get(s, 0),
                "removed": self.removed.get(s, 0),
                "unchanged": self.unchanged.get(s, 0),
                "failed": self.failed.get(s, 0),
            }
            for s in self.segments
        }


def batches(changes: list[Change], size: int) -> Iterator[list[Change]]:
    for start in range(0, len(changes), size):
        yield changes[start : start + size]


def sync(
    connection: duckdb.DuckDBPyConnection,
    destination: Destination,
    audience: pl.DataFrame,
    run_id: str,
    dry_run: bool = False,
    log: Callable[[str], None] = print,
    suppressed: set[str] = frozenset(),  # type: ignore[assignment]
) -> SyncReport:
    """Send the audience's changes to ``destination``; the state advances per acknowledged
    batch, and the sync log is written even when a batch fails (then the error is raised)."""
    ensure_tables(connection)
    changes, unchanged = plan(connection, destination.name, audience)
    report = SyncReport(destination.name, dry_run, unchanged=unchanged)
    report.people = len(changes)
    started = time.monotonic()
    log(
        f"{destination.name}: {len(changes)} people to change "
        f"({'dry run: nothing sent' if dry_run else f'batches of {destination.batch_size}'})"
    )
    try:
        for batch in batches(changes, destination.batch_size):
            if dry_run:
                for change in batch:
                    report.count(change, ok=True)
                continue
            outcome = destination.send(batch)
            _record(connection, destination.name, batch, outcome)
            report.batches += 1
            for change in batch:
                if change.person_id in outcome.acknowledged:
                    report.count(change, ok=True)
                else:
                    reason = outcome.refused.get(change.person_id, "not acknowledged by the ESP")
                    report.count(change, ok=False)
                    report.errors.append((change, reason))
            log(
                f"{destination.name}: batch {report.batches}: {len(outcome.acknowledged)} "
                f"acknowledged, {len(batch) - len(outcome.acknowledged)} refused "
                f"({time.monotonic() - started:.1f}s)"
            )
        push_suppressions(connection, destination, suppressed, report, dry_run, log)
    finally:
        write_log(connection, report, run_id)
    return report


def push_suppressions(
    connection: duckdb.DuckDBPyConnection,
    destination: Destination,
    suppressed: set[str],
    report: SyncReport,
    dry_run: bool,
    log: Callable[[str], None],
) -> None:
    """Every address that must not be mailed (unsubscribed, bounced, complained, withdrawn
    since the last refresh) into the ESP's own suppression, once each: the ESP's answer is
    recorded in ``activation.suppression_state``. An address no longer suppressed (she opted
    in again) leaves it, so a later withdrawal is pushed again."""
    held = {
        r[0]
        for r in connection.execute(
            "select email from activation.suppression_state where destination = ?",
            [destination.name],
        ).fetchall()
    }
    pending = sorted(suppressed - held)
    cleared = sorted(held - suppressed)
    report.suppressed = len(pending)
    if dry_run:
        return
    if cleared:
        connection.executemany(
            "delete from activation.suppression_state where destination = ? and email = ?",
            [(destination.name, e) for e in cleared],
        )
    size = getattr(destination, "suppress_batch_size", destination.batch_size)
    for start in range(0, len(pending), size):
        chunk = pending[start : start + size]
        done = destination.suppress(chunk)
        now = datetime.now(UTC)
        connection.executemany(
            "insert into activation.suppression_state values (?, ?, ?)",
            [(destination.name, e, now) for e in chunk if e in done],
        )
    if pending:
        log(f"{destination.name}: {len(pending)} addresses put in the ESP's suppression")


def write_log(connection: duckdb.DuckDBPyConnection, report: SyncReport, run_id: str) -> None:
    now = datetime.now(UTC)
    rows = [
        (
            run_id,
            now,
            report.destination,
            segment,
            c["added"],
            c["removed"],
            c["unchanged"],
            c["failed"],
            report.dry_run,
        )
        for segment, c in report.per_segment().items()
    ]
    if rows:
        connection.executemany(
            "insert into marts.sync_log values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
    if report.errors:
        connection.executemany(
            "insert into marts.sync_errors values (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    now,
                    report.destination,
                    c.person_id,
                    c.email,
                    c.add + c.remove or c.segments,
                    reason,
                )
                for c, reason in report.errors
            ],
        )
