"""GDPR erasure: forget one person in every layer, and keep them forgotten.

``forget`` resolves the person's identifiers through the identity map (all their emails, user
ids, anonymous ids, CRM and shop ids, and person ids), then removes every record that carries
one of them from the landing zone, the lake (raw and quarantine), the warehouse and the
exports. Every rewrite is atomic. It records tombstones (SHA-256 of ``type:value``, never the
value) that the lake assets apply on every later load, so re-delivered source files cannot
bring the person back, and writes a receipt to the audit trail.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import duckdb
import orjson
import polars as pl

from inboxgraph import audit
from inboxgraph.activation import mask_email
from inboxgraph.explain import normalized
from inboxgraph.objectstore import join, store_for
from inboxgraph.overrides import overrides_file
from inboxgraph.partitions import EVENT_SOURCES
from inboxgraph.resources.lake import LakeResource
from inboxgraph.storage import commit, write_atomic, write_bytes_atomic
from inboxgraph.transforms.sql import query_frame

TOMBSTONE_SCHEMA = {
    "identifier_type": pl.String,
    "identifier_hash": pl.String,
    "erased_at": pl.Datetime("us"),
}
# The lake columns holding each identifier type, per source, for tombstone filtering.
IDENTIFIER_COLUMNS = {
    "web_events": {
        "anonymous_id": "anonymous_id",
        "user_id": "user_id",
        "email": "email",
        "previous_id": "anonymous_id",
    },
    "ga4_events": {"user_id": "user_id", "user_pseudo_id": "anonymous_id"},
    "mixpanel_events": {"user_id": "user_id", "device_id": "anonymous_id"},
    "esp_events": {"email": "email"},
    "hubspot_contacts": {"contact_id": "hubspot_id", "email": "email"},
    "salesforce_contacts": {"record_id": "salesforce_id", "email": "email"},
    "salesforce_leads": {
        "record_id": "salesforce_id",
        "converted_contact_id": "salesforce_id",
        "email": "email",
    },
    "shop_customers": {"customer_id": "customer_id", "email": "email"},
    "shop_orders": {"customer_id": "customer_id"},
    "enrichment": {"email": "email"},
}


def identifier_hash(identifier_type: str, value: str) -> str:
    normalized = value.strip().lower() if identifier_type == "email" else value.strip()
    return hashlib.sha256(f"{identifier_type}:{normalized}".encode()).hexdigest()


@dataclass
class Person:
    """Everything that identifies the person to forget."""

    identifiers: dict[str, set[str]] = field(default_factory=dict)

    def add(self, identifier_type: str, value: str | None) -> None:
        if value:
            value = normalized(identifier_type, value)
            self.identifiers.setdefault(identifier_type, set()).add(value)

    @property
    def values(self) -> set[str]:
        return {v for values in self.identifiers.values() for v in values}

    @property
    def distinctive(self) -> list[str]:
        """Values safe to look for inside text: long, not plain numbers."""
        return sorted(v.lower() for v in self.values if len(v) >= 6 and not v.isdigit())

    @property
    def numeric(self) -> set[str]:
        """Short or numeric ids, matched only as whole field values."""
        return {v for v in self.values if v.lower() not in self.distinctive}

    def hashes(self) -> list[tuple[str, str]]:
        return sorted(
            (kind, identifier_hash(kind, value))
            for kind, values in self.identifiers.items()
            if kind != "person_id"
            for value in values
        )


class Destination(Protocol):
    """An ESP the audiences are synced to (inboxgraph.resources.esp_api)."""

    name: str

    @property
    def enabled(self) -> bool: ...

    def forget(self, emails: list[str], person_ids: list[str]) -> int: ...


@dataclass
class Receipt:
    erased_at: datetime
    identifier_count: int
    files: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    # ESP -> the users it deleted (or, Klaviyo, the deletion requests it accepted)
    destinations: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.files.values()) + sum(self.tables.values())

    def details(self) -> dict:
        return {
            "erased_at": self.erased_at.isoformat(),
            "identifiers": self.identifier_count,
            "files": self.files,
            "tables": self.tables,
            "destinations": self.destinations,
            "rows_removed": self.total,
        }


def resolve_person(warehouse: str, email: str | None, user_id: str | None) -> Person:
    """The person's identifiers from the identity map (or just those given, if unknown)."""
    person = Person()
    person.add("email", email)
    person.add("user_id", user_id)
    if not Path(warehouse).exists():
        return person
    with duckdb.connect(warehouse, read_only=True) as con:
        known = {
            r[0]
            for r in con.sql(
                "select table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        }
        if "identity_map" not in known:
            return person
        given = [("email", v) for v in person.identifiers.get("email", ())] + [
            ("user_id", v) for v in person.identifiers.get("user_id", ())
        ]
        for kind, value in given:
            rows = con.execute(
                "select m.person_id, m.identifier_type, m.identifier_value "
                "from marts.identity_map m where m.person_id in (select person_id from "
                "marts.identity_map where identifier_type = ? and identifier_value = ?)",
                [kind, value],
            ).fetchall()
            for person_id, identifier_type, identifier_value in rows:
                person.add("person_id", person_id)
                person.add(identifier_type, identifier_value)
    return person


def _matches(text: str, person: Person) -> bool:
    lowered = text.lower()
    return any(needle in lowered for needle in person.distinctive)


# ---------------------------------------------------------------------- landing
def _scrub_lines(path: Path, person: Person) -> int:
    compressed = path.suffix == ".gz"
    data = path.read_bytes()
    text = gzip.decompress(data) if compressed else data
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not _matches(line.decode("utf-8", "replace"), person)]
    removed = len(lines) - len(kept)
    if removed:
        body = b"".join(kept)
        if compressed:
            buffer = io.BytesIO()
            with gzip.GzipFile(
                fileobj=buffer, mode="wb", compresslevel=1, mtime=0, filename=""
            ) as handle:
                handle.write(body)
            body = buffer.getvalue()
        write_bytes_atomic(path, body)
    return removed


def _scrub_json_records(
    path: Path, person: Person, records: str, id_type: str = "", id_key: str = ""
) -> int:
    """Drop the person's records from a JSON object's list ``records``: a CRM response page
    (HubSpot ``results`` keyed by ``id``, Salesforce ``records`` keyed by ``Id``), a Braze
    export's ``attributes``. A file that is no such JSON is left as is."""
    try:
        body = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return 0
    ids = person.identifiers.get(id_type, set())
    results = body.get(records) if isinstance(body, dict) else None
    if not isinstance(results, list):
        return 0
    kept = [
        r
        for r in results
        if not (isinstance(r, dict) and str(r.get(id_key)) in ids)
        and not _matches(orjson.dumps(r).decode(), person)
    ]
    if len(kept) != len(results):
        body[records] = kept
        write_bytes_atomic(path, orjson.dumps(body, option=orjson.OPT_INDENT_2))
    return len(results) - len(kept)


def _scrub_csv(path: Path, person: Person) -> int:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return 0
    header, body = rows[0], rows[1:]
    kept = [r for r in body if not _matches(",".join(r), person) and not (set(r) & person.numeric)]
    if len(kept) != len(body):
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([header, *kept])
        write_bytes_atomic(path, buffer.getvalue().encode())
    return len(body) - len(kept)


def _scrub_shop(path: Path, person: Person) -> dict[str, int]:
    customers = sorted(person.identifiers.get("customer_id", set()))
    emails = sorted(person.identifiers.get("email", set()))
    removed: dict[str, int] = {}
    connection = sqlite3.connect(path)
    try:
        marks = ",".join("?" * len(customers)) or "null"
        email_marks = ",".join("?" * len(emails)) or "null"
        ids = [
            r[0]
            for r in connection.execute(
                f"select customer_id from customers where cast(customer_id as text) in ({marks}) "
                f"or lower(trim(email)) in ({email_marks})",
                [*customers, *emails],
            )
        ]
        id_marks = ",".join("?" * len(ids)) or "null"
        orders = [
            r[0]
            for r in connection.execute(
                f"select order_id from orders where customer_id in ({id_marks})", ids
            )
        ]
        order_marks = ",".join("?" * len(orders)) or "null"
        removed["shop.order_items"] = connection.execute(
            f"delete from order_items where order_id in ({order_marks})", orders
        ).rowcount
        removed["shop.orders"] = connection.execute(
            f"delete from orders where order_id in ({order_marks})", orders
        ).rowcount
        removed["shop.customers"] = connection.execute(
            f"delete from customers where customer_id in ({id_marks})", ids
        ).rowcount
        connection.commit()
        connection.execute("vacuum")
    finally:
        connection.close()
    return {k: v for k, v in removed.items() if v}


def scrub_landing(landing: Path, person: Person, shop_db_url: str) -> dict[str, int]:
    removed: dict[str, int] = {}
    for folder in EVENT_SOURCES.values():
        for path in sorted((landing / folder).rglob("*.jsonl*")):
            if n := _scrub_lines(path, person):
                removed[str(path)] = n
        for path in sorted((landing / folder).rglob("*.parquet")):
            if n := scrub_parquet(path, person):
                removed[str(path)] = n
    crm_pages = [
        ("hubspot/contacts", "results", "hubspot_id", "id"),
        ("salesforce/contact", "records", "salesforce_id", "Id"),
        ("salesforce/lead", "records", "salesforce_id", "Id"),
    ]
    for folder, records, id_type, id_key in crm_pages:
        for path in sorted((landing / folder).glob("*.json")):
            if n := _scrub_json_records(path, person, records, id_type, id_key):
                removed[str(path)] = n
    for path in sorted((landing / "enrichment").glob("*.csv")):
        if n := _scrub_csv(path, person):
            removed[str(path)] = n
    if shop_db_url.startswith("sqlite:///"):
        database = Path(shop_db_url.removeprefix("sqlite:///"))
        if database.exists():
            removed.update(_scrub_shop(database, person))
    return removed


# ---------------------------------------------------------------------- lake and exports
def _frame_mask(frame: pl.DataFrame, person: Person) -> pl.Series:
    """True for rows carrying one of the person's identifiers."""
    hit = pl.lit(False)
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            column = pl.col(name).str.to_lowercase()
            if person.distinctive:
                hit = hit | column.str.contains_any(person.distinctive).fill_null(False)
            if person.numeric:
                hit = hit | pl.col(name).is_in(sorted(person.numeric)).fill_null(False)
        elif dtype.is_integer() and person.numeric:
            hit = hit | pl.col(name).cast(pl.String).is_in(sorted(person.numeric)).fill_null(False)
    return frame.select(hit.alias("hit")).get_column("hit")


def scrub_parquet(path: Path, person: Person, commit_fn=commit) -> int:
    frame = pl.read_parquet(path, hive_partitioning=False)
    mask = _frame_mask(frame, person)
    removed = int(mask.sum())
    if removed:
        kept = frame.filter(~mask)
        write_atomic(path, lambda t: kept.write_parquet(t, compression="zstd"), commit_fn)
    return removed


def scrub_lake(lake: LakeResource, person: Person) -> dict[str, int]:
    removed: dict[str, int] = {}
    for path in sorted(lake.root.rglob("*.parquet")):
        if "tombstones" in path.parts:
            continue
        if n := scrub_parquet(path, person, lake._commit):  # noqa: SLF001
            removed[str(path)] = n
    return removed


def scrub_exports(root: Path, person: Person) -> dict[str, int]:
    removed: dict[str, int] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix == ".csv":
            n = _scrub_csv(path, person)
        elif path.suffix == ".json":
            n = _scrub_json_records(path, person, "attributes")
        elif path.suffix == ".parquet":
            n = scrub_parquet(path, person)
        else:
            continue
        if n:
            removed[str(path)] = n
    return removed


# ---------------------------------------------------------------------- warehouse
def scrub_warehouse(warehouse: str, person: Person) -> dict[str, int]:
    """Delete the person's rows from every table, then rewrite the file so no freed block
    keeps a copy of them."""
    path = Path(warehouse)
    if not path.exists():
        return {}
    removed: dict[str, int] = {}
    needles = [n.replace("'", "''") for n in person.distinctive]
    numeric = [n.replace("'", "''") for n in sorted(person.numeric)]
    with duckdb.connect(warehouse) as con:
        # One transaction: a forget killed midway leaves the warehouse whole (and the identity
        # map able to name every identifier again) or leaves no row of the person.
        con.execute("begin transaction")
        tables = con.sql(
            "select table_schema, table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' and table_name != 'audit_log'"
        ).fetchall()
        for schema, table in tables:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ?",
                [schema, table],
            ).fetchall()
            conditions = []
            for column, data_type in columns:
                quoted = f'"{column}"'
                text = f"lower(cast({quoted} as varchar))"
                conditions += [f"contains({text}, '{n}')" for n in needles]
                if numeric and (data_type == "VARCHAR" or "INT" in data_type):
                    listing = ", ".join(f"'{n}'" for n in numeric)
                    conditions.append(f"cast({quoted} as varchar) in ({listing})")
            if not conditions:
                continue
            where = " or ".join(conditions)
            n = con.execute(f'delete from "{schema}"."{table}" where {where}').fetchone()[0]
            if n:
                removed[f"{schema}.{table}"] = n
        con.execute("commit")
        con.execute("checkpoint")
    compacted = path.with_name(f".{path.name}.compact")
    compacted.unlink(missing_ok=True)
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as old (read_only)")
        con.execute(f"attach '{compacted}' as new")
        con.execute("copy from database old to new")
        con.execute("detach old")
        con.execute("detach new")
    commit(compacted, path)
    Path(f"{warehouse}.wal").unlink(missing_ok=True)
    return removed


# ---------------------------------------------------------------------- tombstones
def tombstone_path(lake: LakeResource) -> Path:
    return lake.root / "tombstones" / "data.parquet"


def read_tombstones(lake: LakeResource) -> pl.DataFrame:
    """The SHA-256 digests of erased identifiers (on a local or an object-store lake)."""
    url = join(lake.location, "tombstones", "data.parquet")
    store = store_for(url)
    if not store.exists(url):
        return pl.DataFrame(schema=TOMBSTONE_SCHEMA)
    return pl.read_parquet(io.BytesIO(store.read_bytes(url)))


def add_tombstones(lake: LakeResource, person: Person, erased_at: datetime) -> int:
    new = pl.DataFrame(
        [(kind, digest, erased_at) for kind, digest in person.hashes()],
        schema=TOMBSTONE_SCHEMA,
        orient="row",
    )
    merged = (
        pl.concat([read_tombstones(lake), new])
        .unique(["identifier_type", "identifier_hash"], keep="first")
        .sort("identifier_hash")
    )
    write_atomic(tombstone_path(lake), merged.write_parquet)
    return new.height


def drop_tombstoned(
    frame: pl.DataFrame, source: str, tombstones: pl.DataFrame
) -> tuple[pl.DataFrame, int]:
    """Remove records carrying an erased identifier; returns (kept, how many removed)."""
    columns = {c: t for c, t in IDENTIFIER_COLUMNS.get(source, {}).items() if c in frame.columns}
    if tombstones.is_empty() or not columns or frame.is_empty():
        return frame, 0
    hashes = []
    for column, kind in columns.items():
        value = pl.col(column).cast(pl.String).str.strip_chars()
        if kind == "email":
            value = value.str.to_lowercase()
        hashes.append((pl.lit(f"{kind}:") + value).alias(f"_h_{column}"))
    keyed = frame.with_columns(hashes)
    names = [f"_h_{column}" for column in columns]
    flags = query_frame(
        "tombstone_flags",
        keyed=keyed.select(names).with_row_index("_row"),
        tombstones=tombstones.select("identifier_hash"),
    )
    erased = flags.filter(pl.col("erased")).get_column("_row")
    if "reason" in frame.columns and "_raw" in frame.columns:
        erased = pl.concat([erased, _tombstoned_in_text(frame, set(columns.values()), tombstones)])
    if erased.is_empty():
        return frame, 0
    erased = erased.unique()
    kept = frame.with_row_index("_row").filter(~pl.col("_row").is_in(erased.implode()))
    return kept.drop("_row"), erased.len()


def _tombstoned_in_text(
    frame: pl.DataFrame, kinds: set[str], tombstones: pl.DataFrame
) -> pl.Series:
    """Rows of records that could not be parsed (a quarantine reason) whose raw text names an
    erased identifier as any of its quoted values: a truncated line keeps its fields unread,
    and its raw text would otherwise carry the person into the quarantine."""
    values = (
        frame.with_row_index("_row")
        .filter(pl.col("reason").is_not_null())
        .select("_row", pl.col("_raw").str.extract_all(r'"[^"\\]{1,320}"').alias("_value"))
        .explode("_value")
        .drop_nulls("_value")
        .with_columns(pl.col("_value").str.strip_chars('"').str.strip_chars())
    )
    if values.is_empty():
        return pl.Series("_row", [], dtype=pl.UInt32)
    keys = [
        (
            pl.lit(f"{kind}:")
            + (pl.col("_value").str.to_lowercase() if kind == "email" else pl.col("_value"))
        ).alias(f"_h_{kind}")
        for kind in sorted(kinds)
    ]
    flags = query_frame(
        "tombstone_flags",
        keyed=values.select("_row", *keys),
        tombstones=tombstones.select("identifier_hash"),
    )
    return flags.filter(pl.col("erased")).get_column("_row")


# ---------------------------------------------------------------------- forget
def scrub_overrides(path: Path, person: Person) -> dict[str, int]:
    """The identity overrides naming the person (the seed is a versioned file: commit it)."""
    if not path.exists():
        return {}
    removed = _scrub_csv(path, person)
    return {str(path): removed} if removed else {}


def forget(
    *,
    email: str | None,
    user_id: str | None,
    landing: Path,
    lake: LakeResource,
    warehouse: str,
    exports: Path,
    shop_db_url: str,
    log: Callable[[str, int], None] = lambda layer, removed: None,
    destinations: Sequence[Destination] = (),
) -> tuple[Person, Receipt]:
    """Erase the person in every layer, reporting each layer's removed records to ``log`` as
    it finishes. Killed at any point, running it again completes the erasure: the tombstones
    are written first, every file is replaced atomically, and the warehouse, which names the
    person's identifiers, is scrubbed last and in one transaction.

    The ``destinations`` (ESPs) delete the person before any local layer is touched: an ESP
    that fails stops the erasure with its error, and running it again starts over with every
    identifier still known."""
    if not email and not user_id:
        raise ValueError("forget needs --email or --user-id")
    person = resolve_person(warehouse, email, user_id)
    erased_at = datetime.now(UTC).replace(tzinfo=None)
    receipt = Receipt(erased_at=erased_at, identifier_count=len(person.values))
    add_tombstones(lake, person, erased_at)
    receipt.destinations = forget_at_destinations(warehouse, person, destinations, log)
    for layer, scrub in (
        ("landing", lambda: scrub_landing(landing, person, shop_db_url)),
        ("lake", lambda: scrub_lake(lake, person)),
        ("exports", lambda: scrub_exports(exports, person)),
        ("identity overrides", lambda: scrub_overrides(overrides_file(), person)),
    ):
        removed = scrub()
        receipt.files.update(removed)
        log(layer, sum(removed.values()))
    receipt.tables.update(scrub_warehouse(warehouse, person))
    log("warehouse", sum(receipt.tables.values()))
    if Path(warehouse).exists():
        details = receipt.details() | {"tombstones": [h for _, h in person.hashes()]}
        row = audit.event_row("erasure", None, details, rows_out=receipt.total)
        with duckdb.connect(warehouse) as con:
            audit.append(con, [row])
    return person, receipt


def forget_at_destinations(
    warehouse: str,
    person: Person,
    destinations: Sequence[Destination],
    log: Callable[[str, int], None],
) -> dict[str, int]:
    """Each ESP whose key is set deletes the person: by the addresses and person ids the
    identity map holds, and those the syncs recorded for them (``activation.sync_state``: an
    address or id the person had when last synced)."""
    enabled = [destination for destination in destinations if destination.enabled]
    if not enabled:
        return {}
    emails = set(person.identifiers.get("email", ()))
    person_ids = set(person.identifiers.get("person_id", ()))
    if Path(warehouse).exists():
        with duckdb.connect(warehouse, read_only=True) as con:
            synced = con.sql(
                "select 1 from information_schema.tables "
                "where table_schema = 'activation' and table_name = 'sync_state'"
            ).fetchall()
            if synced:
                rows = con.execute(
                    "select distinct person_id, lower(email) from activation.sync_state "
                    "where list_contains(?, person_id) or list_contains(?, lower(email))",
                    [sorted(person_ids), sorted(emails)],
                ).fetchall()
                person_ids.update(person_id for person_id, _ in rows)
                emails.update(email for _, email in rows)
    removed = {}
    for destination in enabled:
        removed[destination.name] = destination.forget(sorted(emails), sorted(person_ids))
        log(destination.name, removed[destination.name])
    return removed


def rewritten_lake_tables(lake_root: Path, files: Iterable[str]) -> dict[tuple[str, ...], set]:
    """The lake tables (and received dates) among the ``files`` an erasure rewrote: the asset
    key's path of each, with the partitions rewritten (empty for a table without dates)."""
    tables: dict[tuple[str, ...], set] = {}
    for name in files:
        try:
            parts = Path(name).relative_to(lake_root).parts
        except ValueError:
            continue  # not a lake file (landing, exports, overrides)
        if len(parts) < 3:
            continue
        days = tables.setdefault(("lake", parts[1]), set())
        day = next((p.split("=", 1)[1] for p in parts[2:] if p.startswith("received_date=")), None)
        if day is not None:
            days.add(day)
    return tables


def describe(person: Person, email: str | None) -> Iterable[str]:
    yield f"forgot {mask_email(email) if email else 'the person'}: " + ", ".join(
        f"{len(v)} {k}" for k, v in sorted(person.identifiers.items())
    )
