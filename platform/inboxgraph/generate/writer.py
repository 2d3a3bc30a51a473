"""Write simulated footprints into the landing zone in each vendor's own format.

People are processed in chunks; each chunk writes its own event files per received date, so the
number of open files and the memory in use stay bounded whatever the number of people. Output
bytes depend only on the seed, the window and the chunk size (gzip headers carry no time).
"""

from __future__ import annotations

import csv
import gzip
import io
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import orjson
import sqlalchemy as sa

from inboxgraph.generate import catalog
from inboxgraph.generate.analytics import WEB_TOOLS
from inboxgraph.generate.commerce import CRMS, SALESFORCE_API
from inboxgraph.generate.footprint import Footprint
from inboxgraph.generate.people import PersonSimulator
from inboxgraph.settings import safe_url

HUBSPOT_PAGE_SIZE = 100
SALESFORCE_PAGE_SIZE = 200
SALESFORCE_FOLDERS = {"salesforce_contacts": "contact", "salesforce_leads": "lead"}
ENRICHMENT_COLUMNS = {
    "firmographics": ("email", "company", "job_title", "industry", "company_size"),
    "demographics": ("email", "age_range", "household_income", "has_children"),
}

SHOP_SCHEMA = """
create table customers (
    customer_id integer primary key, email text, first_name text, last_name text,
    created_at text not null, updated_at text not null);
create table products (
    product_id text primary key, name text not null, category text, price numeric);
create table orders (
    order_id text primary key, customer_id integer, status text, total numeric,
    currency text, created_at text, updated_at text not null);
create table order_items (
    order_id text not null, product_id text not null, quantity integer, unit_price numeric);
create index orders_updated_at on orders(updated_at);
create index customers_updated_at on customers(updated_at);
"""


# The same tables on a server database (PostgreSQL), with its own types.
SERVER_SHOP_SCHEMA = """
create table customers (
    customer_id integer primary key, email text, first_name text, last_name text,
    created_at timestamp not null, updated_at timestamp not null);
create table products (
    product_id text primary key, name text not null, category text, price numeric(12, 2));
create table orders (
    order_id text primary key, customer_id integer, status text, total numeric(12, 2),
    currency text, created_at timestamp, updated_at timestamp not null);
create table order_items (
    order_id text not null, product_id text not null, quantity integer,
    unit_price numeric(12, 2));
create index orders_updated_at on orders(updated_at);
create index customers_updated_at on customers(updated_at);
"""
SHOP_COLUMNS = {
    "customers": ("customer_id", "email", "first_name", "last_name", "created_at", "updated_at"),
    "products": ("product_id", "name", "category", "price"),
    "orders": (
        "order_id",
        "customer_id",
        "status",
        "total",
        "currency",
        "created_at",
        "updated_at",
    ),
    "order_items": ("order_id", "product_id", "quantity", "unit_price"),
}


class _Shop:
    """The shop's database being written: a SQLite file (the default, through sqlite3) or any
    database SQLAlchemy reaches (PostgreSQL), which must not hold the shop's tables yet."""

    def __init__(self, url: str) -> None:
        parsed = sa.make_url(url)
        self.safe_url = safe_url(url)
        if parsed.get_backend_name() == "sqlite":
            path = Path(parsed.database or "")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.sqlite: sqlite3.Connection | None = sqlite3.connect(path)
            self.engine: sa.Engine | None = None
        else:
            self.sqlite, self.engine = None, sa.create_engine(url)
        existing = set(SHOP_COLUMNS) & set(self._tables())
        if existing:
            self.close()
            raise FileExistsError(
                f"the shop database {self.safe_url} (INBOXGRAPH_SHOP_DB_URL) already has "
                f"{', '.join(sorted(existing))}; generate into an empty database"
            )
        self._script(SHOP_SCHEMA if self.sqlite else SERVER_SHOP_SCHEMA)

    def _tables(self) -> list[str]:
        if self.sqlite is not None:
            return [r[0] for r in self.sqlite.execute("select name from sqlite_master")]
        try:
            with self.engine.connect() as conn:
                return sa.inspect(conn).get_table_names()
        except sa.exc.OperationalError as exc:
            self.close()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ConnectionError(
                f"the shop database {self.safe_url} (INBOXGRAPH_SHOP_DB_URL) cannot be "
                f"reached: {reason}"
            ) from None

    def _script(self, script: str) -> None:
        if self.sqlite is not None:
            self.sqlite.executescript(script)
            return
        with self.engine.begin() as conn:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(sa.text(statement))

    def insert(self, table: str, rows: list[tuple]) -> None:
        if not rows:
            return
        columns = SHOP_COLUMNS[table]
        if self.sqlite is not None:
            marks = ", ".join("?" * len(columns))
            self.sqlite.executemany(f"insert into {table} values ({marks})", rows)
            self.sqlite.commit()
            return
        statement = sa.text(
            f"insert into {table} ({', '.join(columns)}) "
            f"values ({', '.join(':' + c for c in columns)})"
        )
        with self.engine.begin() as conn:
            conn.execute(statement, [dict(zip(columns, row, strict=True)) for row in rows])

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.engine is not None:
            self.engine.dispose()


@dataclass
class GenerateOptions:
    people: int = 2_000
    days: int = 30
    seed: int = 42
    end: date = field(default_factory=date.today)
    chunk_size: int = 50_000
    # The shop's web analytics tools (any of segment, ga4, mixpanel), each tracking a share
    # of the sessions in its own export format.
    web_tools: tuple[str, ...] = WEB_TOOLS
    # The shop's CRMs (any of hubspot, salesforce): each knows a share of the contacts, some
    # people are in both.
    crms: tuple[str, ...] = CRMS

    def __post_init__(self) -> None:
        unknown = sorted(set(self.web_tools) - set(WEB_TOOLS))
        if unknown or not self.web_tools:
            raise ValueError(
                f"web tools must be some of {', '.join(WEB_TOOLS)}; got {', '.join(unknown)}"
            )
        unknown = sorted(set(self.crms) - set(CRMS))
        if unknown or not self.crms:
            raise ValueError(f"CRMs must be some of {', '.join(CRMS)}; got {', '.join(unknown)}")


@dataclass
class GenerateReport:
    """What was written: record counts, bad records by kind and duplicates, per source."""

    records: dict[str, int] = field(default_factory=dict)
    bad: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    files: int = 0

    def add(self, source: str, n: int = 1) -> None:
        self.records[source] = self.records.get(source, 0) + n

    def merge(self, fp: Footprint) -> None:
        for source, kinds in fp.bad.items():
            target = self.bad.setdefault(source, {})
            for kind, n in kinds.items():
                target[kind] = target.get(kind, 0) + n
        for key, n in fp.duplicates.items():
            self.duplicates[key] = self.duplicates.get(key, 0) + n

    def to_json(self) -> bytes:
        payload = {"records": self.records, "bad": self.bad, "duplicates": self.duplicates}
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


class _DayFiles:
    """One open file per received date for one chunk of people."""

    def __init__(self, root: Path, name: str, compress: bool) -> None:
        self.root, self.name, self.compress = root, name, compress
        self.handles: dict[date, io.BufferedIOBase] = {}
        self.opened = 0

    def write(self, day: date, line: bytes) -> None:
        handle = self.handles.get(day)
        if handle is None:
            folder = self.root / day.isoformat()
            folder.mkdir(parents=True, exist_ok=True)
            if self.compress:
                raw = open(folder / f"{self.name}.jsonl.gz", "wb")  # noqa: SIM115
                handle = gzip.GzipFile(
                    fileobj=raw, mode="wb", compresslevel=1, mtime=0, filename=""
                )
                handle._raw = raw  # type: ignore[attr-defined]
            else:
                handle = open(folder / f"{self.name}.jsonl", "wb")  # noqa: SIM115
            self.handles[day] = handle
            self.opened += 1
        handle.write(line)

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
            raw = getattr(handle, "_raw", None)
            if raw is not None:
                raw.close()
        self.handles.clear()


class _SalesforcePages:
    """One object's records as SOQL query response pages: each chunk of people is one query
    whose pages chain by ``nextRecordsUrl`` (``done`` on the last)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        self.folder, self.records, self.written, self.queries = folder, [], 0, 0

    def flush(self) -> None:
        if not self.records:
            return
        self.queries += 1
        query = f"01g{self.queries:015d}"
        total = len(self.records)
        for offset in range(0, total, SALESFORCE_PAGE_SIZE):
            page = self.records[offset : offset + SALESFORCE_PAGE_SIZE]
            following = offset + SALESFORCE_PAGE_SIZE
            body: dict = {"totalSize": total, "done": following >= total, "records": page}
            if following < total:
                body["nextRecordsUrl"] = f"{SALESFORCE_API}/query/{query}-{following}"
            self.written += 1
            path = self.folder / f"page-{self.written:06d}.json"
            path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        self.records = []


def _line(record: dict | str) -> bytes:
    if isinstance(record, str):
        return record.encode() + b"\n"
    return orjson.dumps(record) + b"\n"


def generate_landing(
    landing: Path,
    options: GenerateOptions,
    progress: Callable[[int], None] | None = None,
    shop_db_url: str | None = None,
) -> GenerateReport:
    """Write every source for ``options.people`` people into ``landing``, the shop into the
    database ``shop_db_url`` names (``landing/shop.db`` when None); return the counts."""
    landing = Path(landing)
    if landing.exists() and any(landing.iterdir()):
        raise FileExistsError(
            f"landing zone {landing} is not empty; generate into an empty folder "
            "(or remove it) so runs stay reproducible"
        )
    landing.mkdir(parents=True, exist_ok=True)
    start = options.end - timedelta(days=options.days - 1)
    products = catalog.build_products(options.seed)
    tools = tuple(t for t in WEB_TOOLS if t in options.web_tools)
    crms = tuple(c for c in CRMS if c in options.crms)
    simulator = PersonSimulator(options.seed, start, options.end, products, tools, crms)
    report = GenerateReport()

    shop = _Shop(shop_db_url or f"sqlite:///{landing / 'shop.db'}")
    shop.insert("products", [(p.product_id, p.name, p.category, p.price) for p in products])
    report.add("shop_products", len(products))

    contacts_dir = landing / "hubspot" / "contacts"
    contacts_dir.mkdir(parents=True)
    pending_contacts: list[dict] = []
    page_number = 0

    def flush_contacts(final: bool) -> None:
        nonlocal page_number
        while len(pending_contacts) >= HUBSPOT_PAGE_SIZE or (final and pending_contacts):
            page = pending_contacts[:HUBSPOT_PAGE_SIZE]
            del pending_contacts[:HUBSPOT_PAGE_SIZE]
            page_number += 1
            more = bool(pending_contacts) or not final
            body: dict = {"results": page}
            if more:
                after = str(page_number * HUBSPOT_PAGE_SIZE)
                body["paging"] = {
                    "next": {
                        "after": after,
                        "link": f"https://api.hubapi.com/crm/v3/objects/contacts?after={after}",
                    }
                }
            path = contacts_dir / f"page-{page_number:06d}.json"
            path.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))

    salesforce_pages = {
        source: _SalesforcePages(landing / "salesforce" / folder)
        for source, folder in SALESFORCE_FOLDERS.items()
        if "salesforce" in crms
    }

    enrichment_dir = landing / "enrichment"
    enrichment_dir.mkdir()
    enrichment_files = {
        name: open(enrichment_dir / f"{name}.csv", "w", newline="", encoding="utf-8")  # noqa: SIM115
        for name in ENRICHMENT_COLUMNS
    }
    enrichment_writers = {
        name: csv.DictWriter(handle, fieldnames=ENRICHMENT_COLUMNS[name], lineterminator="\n")
        for name, handle in enrichment_files.items()
    }
    for writer in enrichment_writers.values():
        writer.writeheader()

    try:
        for chunk_start in range(0, options.people, options.chunk_size):
            chunk = chunk_start // options.chunk_size
            web = _DayFiles(landing / "web_events", f"events-{chunk:05d}", compress=True)
            esp = _DayFiles(landing / "esp_events", f"sendgrid-{chunk:05d}", compress=False)
            ga4 = _DayFiles(landing / "ga4", f"events_{chunk:05d}", compress=True)
            mixpanel = _DayFiles(landing / "mixpanel", f"export-{chunk:05d}", compress=True)
            customers, orders, items = [], [], []
            chunk_end = min(chunk_start + options.chunk_size, options.people)
            for index in range(chunk_start, chunk_end):
                fp = simulator.simulate(index)
                report.merge(fp)
                for day, record in fp.web:
                    web.write(day, _line(record))
                for day, record in fp.esp:
                    esp.write(day, _line(record))
                for day, record in fp.ga4:
                    ga4.write(day, _line(record))
                for day, record in fp.mixpanel:
                    mixpanel.write(day, _line(record))
                report.add("web_events", len(fp.web))
                report.add("esp_events", len(fp.esp))
                report.add("ga4_events", len(fp.ga4))
                report.add("mixpanel_events", len(fp.mixpanel))
                if fp.contact is not None:
                    pending_contacts.append(fp.contact)
                    report.add("hubspot_contacts")
                for source, record in fp.salesforce:
                    salesforce_pages[source].records.append(record)
                    report.add(source)
                if fp.customer is not None:
                    customers.append(fp.customer)
                orders.extend(fp.orders)
                items.extend(fp.order_items)
                for name, row in fp.enrichment.items():
                    enrichment_writers[name].writerow(row)
                    report.add("enrichment")
                if progress is not None and (index + 1) % 1000 == 0:
                    progress(1000)
            if progress is not None and (chunk_end - chunk_start) % 1000:
                progress((chunk_end - chunk_start) % 1000)
            for files in (web, esp, ga4, mixpanel):
                files.close()
                report.files += files.opened
            flush_contacts(final=False)
            for pages in salesforce_pages.values():
                pages.flush()
            shop.insert("customers", customers)
            shop.insert("orders", orders)
            shop.insert("order_items", items)
            report.add("shop_customers", len(customers))
            report.add("shop_orders", len(orders))
            report.add("shop_order_items", len(items))
        flush_contacts(final=True)
    finally:
        for handle in enrichment_files.values():
            handle.close()
        shop.close()
    report.files += page_number + len(enrichment_files) + 1
    report.files += sum(pages.written for pages in salesforce_pages.values())
    generator_dir = landing / "_generator"
    generator_dir.mkdir()
    (generator_dir / "report.json").write_bytes(report.to_json())
    return report
