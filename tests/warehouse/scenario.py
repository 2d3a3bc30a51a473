"""Build a small, hand-written landing zone in each vendor's format, then land and build it.

Each test person is one situation (an identity rule, a segment boundary, an email status rule);
the warehouse tests run the real lake assets and a real ``dbt build`` over it and assert on the
marts, like dbt-utils' integration tests with expected seeds.
"""

from __future__ import annotations

import csv
import itertools
import json
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson

from inboxgraph.assets.warehouse import INCREMENTAL_EVENT_MODELS
from inboxgraph.dbt_project import DBT_PROJECT_DIR, dbt_executable
from inboxgraph.generate.writer import SHOP_SCHEMA
from inboxgraph.partitions import EVENT_SOURCES
from inboxgraph.resources.lake import LakeResource
from inboxgraph.resources.sources import EventFolderSource
from inboxgraph.settings import Paths
from inboxgraph.stream import ensure_stream_table
from tests.assets.lake_helpers import materialize_batches, materialize_events

AS_OF = datetime(2026, 11, 28, 0, 0, 0)
_ids = itertools.count(1)


def ago(days: float, hours: float = 0) -> datetime:
    return AS_OF - timedelta(days=days, hours=hours)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Landing:
    web: list[dict] = field(default_factory=list)
    esp: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    # (folder: contact or lead, record) as a Salesforce SOQL query returns it
    salesforce: list[tuple[str, dict]] = field(default_factory=list)
    customers: list[tuple] = field(default_factory=list)
    orders: list[tuple] = field(default_factory=list)
    enrichment: list[dict] = field(default_factory=list)
    # (received date, record: a dict, or a raw line as text)
    ga4: list[tuple[str, dict | str]] = field(default_factory=list)
    mixpanel: list[tuple[str, dict | str]] = field(default_factory=list)

    # ------------------------------------------------------------------ web
    def message(
        self,
        kind: str,
        at: datetime,
        anonymous_id: str | None = None,
        user_id: str | None = None,
        **fields: object,
    ) -> None:
        message: dict = {"type": kind, "messageId": f"msg-{next(_ids)}", "timestamp": _iso(at)}
        if anonymous_id is not None:
            message["anonymousId"] = anonymous_id
        if user_id is not None:
            message["userId"] = user_id
        message.update(fields)
        self.web.append(message)

    def page(
        self,
        at: datetime,
        anonymous_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        self.message("page", at, anonymous_id, user_id, name="Home", properties={"path": "/"})

    def track(
        self,
        event: str,
        at: datetime,
        anonymous_id: str | None = None,
        user_id: str | None = None,
        **properties: object,
    ) -> None:
        self.message(
            "track",
            at,
            anonymous_id,
            user_id,
            event=event,
            properties={"product_id": "P0001", "category": "Apparel", **properties},
        )

    def identify(
        self, at: datetime, anonymous_id: str | None, user_id: str | None, **traits: object
    ) -> None:
        self.message("identify", at, anonymous_id, user_id, traits=traits)

    def alias(self, at: datetime, previous_id: str, user_id: str) -> None:
        self.message("alias", at, None, user_id, previousId=previous_id)

    # ------------------------------------------------------------------ GA4 and Mixpanel
    def ga4_event(
        self,
        name: str,
        at: datetime,
        pseudo_id: str | None,
        user_id: str | None = None,
        params: dict[str, str | int] | None = None,
        **fields: object,
    ) -> dict:
        """One row of the GA4 BigQuery export (INT64 as JSON strings, as the export writes)."""
        event_params = [
            {"key": "ga_session_id", "value": {"int_value": str(int(at.timestamp()) // 1800)}},
            {"key": "engagement_time_msec", "value": {"int_value": str(next(_ids))}},
        ]
        for key, value in (params or {}).items():
            kind = "int_value" if isinstance(value, int) else "string_value"
            event_params.append({"key": key, "value": {kind: str(value)}})
        row = {
            "event_date": at.strftime("%Y%m%d"),
            "event_timestamp": str(int(at.replace(tzinfo=UTC).timestamp() * 1_000_000)),
            "event_name": name,
            "event_params": event_params,
            "user_id": user_id,
            "user_pseudo_id": pseudo_id,
            "user_properties": [],
            "device": {"category": "desktop", "web_info": {"browser": "Chrome"}},
            "geo": {"country": "Germany", "city": "Berlin"},
            "stream_id": "4242",
            "platform": "WEB",
            **fields,
        }
        self.ga4.append((at.strftime("%Y-%m-%d"), row))
        return row

    def mixpanel_event(
        self,
        event: str,
        at: datetime,
        device_id: str | None,
        user_id: str | None = None,
        **properties: object,
    ) -> dict:
        """One line of Mixpanel's Raw Event Export."""
        props: dict = {
            "time": int(at.replace(tzinfo=UTC).timestamp()),
            "distinct_id": user_id or f"$device:{device_id}",
            "$insert_id": f"ins-{next(_ids)}",
            "$current_url": "https://shop.example.com/",
            "mp_processing_time_ms": int(at.replace(tzinfo=UTC).timestamp() * 1000) + 900,
        }
        if device_id is not None:
            props["$device_id"] = device_id
        if user_id is not None:
            props["$user_id"] = user_id
        props.update(properties)
        line = {"event": event, "properties": props}
        self.mixpanel.append((at.strftime("%Y-%m-%d"), line))
        return line

    # ------------------------------------------------------------------ other sources
    def esp_event(self, email: str, event: str, at: datetime, **fields: object) -> None:
        self.esp.append(
            {
                "email": email,
                "event": event,
                "timestamp": int(at.timestamp()),
                "sg_event_id": f"sg-{next(_ids)}",
                "sg_message_id": "m.1",
                **fields,
            }
        )

    def contact(
        self, contact_id: str, email: str, optout: bool, at: datetime, **props: str
    ) -> None:
        self.contacts.append(
            {
                "id": contact_id,
                "properties": {
                    "email": email,
                    "hs_email_optout": str(optout).lower(),
                    "firstname": props.get("firstname", "Test"),
                    "lastname": props.get("lastname", "Person"),
                    "lifecyclestage": "customer",
                    **props,
                },
                "createdAt": _iso(at - timedelta(days=200)),
                "updatedAt": _iso(at),
                "archived": False,
            }
        )

    def salesforce_record(
        self, sobject: str, record_id: str, email: str | None, at: datetime, **fields: object
    ) -> dict:
        """A Salesforce Contact or Lead (``HasOptedOutOfEmail`` false unless given)."""
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
        record = {
            "attributes": {"type": sobject, "url": f"/services/data/v62.0/sobjects/{sobject}/x"},
            "Id": record_id,
            "Email": email,
            "FirstName": "Test",
            "LastName": "Person",
            "HasOptedOutOfEmail": False,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
            "IsDeleted": False,
            **fields,
        }
        self.salesforce.append(("contact" if sobject == "Contact" else "lead", record))
        return record

    def customer(self, customer_id: int, email: str) -> None:
        stamp = ago(300).strftime("%Y-%m-%d %H:%M:%S")
        self.customers.append((customer_id, email, "Test", "Person", stamp, stamp))

    def order(
        self, order_id: str, customer_id: int, total: float, at: datetime, status: str = "completed"
    ) -> None:
        stamp = at.strftime("%Y-%m-%d %H:%M:%S")
        self.orders.append((order_id, customer_id, status, total, "USD", stamp, stamp))

    # ------------------------------------------------------------------ write
    def write(self, landing: Path) -> None:
        """Write (or add to) the landing zone; event files are named so reruns add files."""
        batch = f"{next(_ids):06d}"
        for folder, records in (("web_events", self.web), ("esp_events", self.esp)):
            by_day: dict[str, list[dict]] = {}
            for record in records:
                ts = record["timestamp"]
                day = (
                    ts[:10]
                    if isinstance(ts, str)
                    else datetime.utcfromtimestamp(ts).strftime("%Y-%m-%d")
                )
                by_day.setdefault(day, []).append(record)
            for day, day_records in by_day.items():
                target = landing / folder / day
                target.mkdir(parents=True, exist_ok=True)
                (target / f"batch-{batch}.jsonl").write_bytes(
                    b"".join(orjson.dumps(r) + b"\n" for r in day_records)
                )
        for folder, rows in (("ga4", self.ga4), ("mixpanel", self.mixpanel)):
            by_received: dict[str, list[bytes]] = {}
            for day, row in rows:
                line = row.encode() if isinstance(row, str) else orjson.dumps(row)
                by_received.setdefault(day, []).append(line)
            for day, lines in by_received.items():
                target = landing / folder / day
                target.mkdir(parents=True, exist_ok=True)
                (target / f"export-{batch}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        contacts_dir = landing / "hubspot" / "contacts"
        contacts_dir.mkdir(parents=True, exist_ok=True)
        if self.contacts:
            (contacts_dir / f"page-{batch}.json").write_bytes(
                orjson.dumps({"results": self.contacts})
            )
        for folder in ("contact", "lead"):
            records = [r for f, r in self.salesforce if f == folder]
            target = landing / "salesforce" / folder
            target.mkdir(parents=True, exist_ok=True)
            if records:
                body = {"totalSize": len(records), "done": True, "records": records}
                (target / f"page-{batch}.json").write_bytes(orjson.dumps(body))
        database = landing / "shop.db"
        fresh = not database.exists()
        with sqlite3.connect(database) as db:
            if fresh:
                db.executescript(SHOP_SCHEMA)
                db.execute(
                    "insert into products values ('P0001', 'Classic Linen Shirt', 'Apparel', 25.0)"
                )
            db.executemany("insert into customers values (?, ?, ?, ?, ?, ?)", self.customers)
            db.executemany("insert into orders values (?, ?, ?, ?, ?, ?, ?)", self.orders)
        enrichment_dir = landing / "enrichment"
        enrichment_dir.mkdir(parents=True, exist_ok=True)
        if self.enrichment:
            with open(enrichment_dir / "firmographics.csv", "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=["email", "company", "job_title"])
                writer.writeheader()
                writer.writerows(self.enrichment)
        self.web, self.esp, self.contacts, self.ga4, self.mixpanel = [], [], [], [], []
        self.salesforce = []
        self.customers, self.orders, self.enrichment = [], [], []


def write_lines(paths: Paths, folder: str, day: str, file: str, records: list[dict]) -> None:
    """Land ``records`` as one JSON-lines file in ``folder``'s folder for received date ``day``."""
    target = Path(paths.landing_url) / folder / day
    target.mkdir(parents=True, exist_ok=True)
    (target / file).write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n")


def run_dbt(
    paths: Paths,
    command: str,
    *args: str,
    succeeds: bool = True,
) -> str:
    """``dbt <command>`` on the project for this platform home; it must succeed, or fail when
    ``succeeds`` is false. Returns its output."""
    completed = subprocess.run(
        [
            dbt_executable(),
            command,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(Path(paths.home) / "dbt-target"),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (completed.returncode == 0) == succeeds, completed.stdout[-5000:]
    return completed.stdout


def _landed_since_last_call(paths: Paths) -> dict[str, list[str]]:
    """The received dates whose landing files changed since the last call for this home, per
    dbt var of macro received_dates: the window Dagster names to a run (from its observations of
    the landing folders; assets/warehouse.py)."""
    state = Path(paths.home) / "landed-days.json"
    seen = json.loads(state.read_text()) if state.exists() else {}
    window: dict[str, set[str]] = {var: set() for var in INCREMENTAL_EVENT_MODELS}
    var_of = {
        source: var for var, (sources, _) in INCREMENTAL_EVENT_MODELS.items() for source in sources
    }
    for source, folder in EVENT_SOURCES.items():
        days = EventFolderSource(
            folder=folder, source=source, landing_url=paths.landing_url, home=paths.home
        ).fingerprints()
        var = var_of[source]
        held = seen.get(source, {})
        window[var].update(day for day, version in days.items() if held.get(day) != version)
        seen[source] = days
    state.write_text(json.dumps(seen))
    return {var: sorted(days) for var, days in window.items()}


def land(paths: Paths, **variables: str) -> list[str]:
    """Run the lake assets over everything landed (and create the stream's table). Returns the
    dbt arguments of the next run: the vars naming the received dates landed since the last call,
    as Dagster names them, with ``variables``."""
    materialize_events(paths)
    materialize_batches()
    ensure_stream_table(LakeResource(url=paths.lake_url))
    return ["--vars", json.dumps({**_landed_since_last_call(paths), **variables})]


def land_and_build(paths: Paths, as_of: datetime = AS_OF) -> None:
    """Run the lake assets over everything landed, then ``dbt build`` (every test must pass)."""
    run_dbt(paths, "build", *land(paths, as_of=as_of.strftime("%Y-%m-%d %H:%M:%S")))


def query(paths: Paths, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(paths.warehouse, read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def identifier_row(
    paths: Paths, table: str, columns: str, identifier_type: str, value: str
) -> tuple | None:
    """``columns`` of ``table``'s row for one identifier, or None."""
    rows = query(
        paths,
        f"select {columns} from {table} where identifier_type = ? and identifier_value = ?",
        identifier_type,
        value,
    )
    return rows[0] if rows else None


def person_of(paths: Paths, identifier_type: str, value: str) -> str | None:
    row = identifier_row(paths, "marts.identity_map", "person_id", identifier_type, value)
    return row[0] if row else None
