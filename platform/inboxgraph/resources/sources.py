"""Readers for every source system, as Dagster resources.

Each reader returns raw records plus where they came from (``_raw``, ``_source_file``,
``_line``) and nothing else decides validity; the transforms do. In the embedded default the
readers take the vendors' payloads from the landing zone (or the shop database). A reader that
calls the vendor's API instead only has to return the same frame.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import orjson
import polars as pl
import sqlalchemy as sa

from inboxgraph.objectstore import join, name_of, store_for
from inboxgraph.settings import check_location, check_shop_db_url, is_remote, resolve_paths

DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EVENT_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".parquet")


def fingerprint(entries: Iterable[str]) -> str:
    """A short, order-independent hash of file stamps."""
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]


def _day_of(url: str) -> str:
    """The received-date folder a landed file sits in."""
    return url.replace("\\", "/").rsplit("/", 2)[-2]


RAW_SCHEMA = {"_raw": pl.String, "_source_file": pl.String, "_line": pl.Int64}


class LandingResource(dg.ConfigurableResource):
    """A resource that reads or saves into the landing zone: INBOXGRAPH_LANDING_URL, else the
    home's ``landing``."""

    landing_url: str = ""
    home: str = ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        check_location("INBOXGRAPH_LANDING_URL", self.landing_url)

    def landing(self, *parts: str) -> str:
        """The landing zone's URL (a local path or ``s3://bucket/prefix``) joined with
        ``parts``."""
        root = resolve_paths(home=self.home or None, landing_url=self.landing_url or None)
        return join(root.landing_url, *parts)

    def local_landing(self, what: str) -> Path:
        """The landing zone as a local folder, for ``what`` saves into one."""
        landing = self.landing()
        if is_remote(landing):
            raise dg.Failure(
                f"{what} into a local landing zone; INBOXGRAPH_LANDING_URL is {landing}",
                allow_retries=False,
            )
        return Path(landing)

    def stamp(self, path: str) -> str | None:
        """``name:size:mtime`` of a local file; None on an object store, where a file may be
        replaced under the same name and is read on every run."""
        return None if is_remote(path) else name_of(path) + _size_and_time(path)

    def version(self, files: list[str]) -> str | None:
        """A hash of the files' stamps (the folder's data version); None when any file has
        no stamp, so its folder counts as changed every time."""
        stamps = [self.stamp(path) for path in files]
        if any(stamp is None for stamp in stamps):
            return None
        return fingerprint(stamps)  # type: ignore[arg-type]

    def require_landing(self) -> None:
        """A local landing zone must exist: a missing one is a wrong setting, not an empty
        source."""
        root = self.landing()
        if not is_remote(root) and not os.path.isdir(root):
            raise dg.Failure(
                f"the landing zone {root} (INBOXGRAPH_LANDING_URL) does not exist; point the "
                "setting at the folder where sources land, or run `inboxgraph generate`",
                allow_retries=False,
            )


def _files_in(folder: str, suffix: str) -> list[str]:
    """The files directly in ``folder`` (not in its sub-folders) whose names end in ``suffix``."""
    return [
        url
        for url in store_for(folder).list(folder, suffix)
        if "/" not in url[len(folder) + 1 :].replace("\\", "/")
    ]


def _size_and_time(path: str) -> str:
    """``:size:mtime`` of a local file, the part of a stamp that changes when it is rewritten."""
    stat = os.stat(path)
    return f":{stat.st_size}:{stat.st_mtime_ns}"


def _read_text_file(url: str) -> bytes:
    data = store_for(url).read_bytes(url)
    return gzip.decompress(data) if url.endswith(".gz") else data


class EventFolderSource(LandingResource):
    """Event files landed per received date: ``<landing>/<folder>/<YYYY-MM-DD>/*.jsonl[.gz]``
    (or ``*.parquet``, one record per row, as BigQuery exports GA4 events).

    ``source`` names the lake table the files land in (default: the folder's name).
    """

    folder: str
    source: str = ""

    @property
    def name(self) -> str:
        return self.source or self.folder

    @property
    def root(self) -> str:
        return self.landing(self.folder)

    def _event_files(self, folder: str) -> list[str]:
        return [
            url
            for url in store_for(folder).list(folder)
            if url.endswith(EVENT_FILE_SUFFIXES) and DATE_FOLDER.match(_day_of(url))
        ]

    def partitions(self) -> list[str]:
        """Received dates that have landed files, oldest first."""
        return sorted({_day_of(url) for url in self._event_files(self.root)})

    def files(self, day: str) -> list[str]:
        folder = join(self.root, day)
        return [url for url in self._event_files(folder) if _day_of(url) == day]

    def stamps(self, days: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Per received date, ``folder/name:size:mtime`` of each landed file (sorted).

        On an object store a landed file is never rewritten, so its name alone stands for it.
        """
        urls = (
            self._event_files(self.root)
            if days is None
            else [url for day in days for url in self.files(day)]
        )
        listing: dict[str, list[str]] = {}
        for url in urls:
            stamp = f"{self.folder}/{url.rsplit('/', 1)[-1]}"
            if not is_remote(url):
                stamp += _size_and_time(url)
            listing.setdefault(_day_of(url), []).append(stamp)
        return {day: sorted(entries) for day, entries in sorted(listing.items())}

    def fingerprints(self, days: Iterable[str] | None = None) -> dict[str, str]:
        """Per received date, a short hash of its landed files' names, sizes and times."""
        return {day: fingerprint(entries) for day, entries in self.stamps(days).items()}

    def read_lines(self, day: str) -> pl.DataFrame:
        """Every non-blank line of every file landed on ``day``, with file and line number."""
        frames = []
        for path in self.files(day):
            if path.endswith(".parquet"):
                frames.append(_parquet_lines(path))
                continue
            lines = pl.read_csv(
                _read_text_file(path),
                has_header=False,
                separator="\x1f",
                quote_char=None,
                schema={"_raw": pl.String},
                encoding="utf8-lossy",
            )
            frames.append(
                lines.with_row_index("_line", offset=1)
                .with_columns(
                    pl.col("_line").cast(pl.Int64), pl.lit(str(path)).alias("_source_file")
                )
                .filter(pl.col("_raw").str.strip_chars().str.len_chars() > 0)
                .select(list(RAW_SCHEMA))
            )
        return pl.concat(frames) if frames else pl.DataFrame(schema=RAW_SCHEMA)


def _parquet_lines(url: str) -> pl.DataFrame:
    """Each row of a Parquet export as one JSON document (nested columns as JSON objects and
    arrays), so that it is validated like a line of a JSON export. A file that is no Parquet
    fails the run with one sentence naming it (it has no lines to quarantine one by one)."""
    data = store_for(url).read_bytes(url)
    try:
        table = pl.read_parquet(data).to_arrow()
    except Exception as error:  # polars raises several kinds for a damaged file
        raise dg.Failure(
            f"{url} is not a readable Parquet file ({str(error)[:200]}); replace it with the "
            "export, or move it out of the landing zone",
            allow_retries=False,
        ) from None
    with duckdb.connect() as connection:
        connection.register("exported", table)
        raw = connection.sql("select to_json(exported)::varchar as _raw from exported").pl()
    return raw.with_row_index("_line", offset=1).select(
        "_raw", pl.lit(url).alias("_source_file"), pl.col("_line").cast(pl.Int64)
    )


HUBSPOT_FIELDS = (
    "email",
    "firstname",
    "lastname",
    "city",
    "country",
    "hs_email_optout",
    "lifecyclestage",
)
HUBSPOT_SCHEMA = {
    **RAW_SCHEMA,
    "id": pl.String,
    **{name: pl.String for name in HUBSPOT_FIELDS},
    "properties": pl.String,
    "createdAt": pl.String,
    "updatedAt": pl.String,
    "archived": pl.String,
}


def _parse_iso(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class HubspotContactsSource(LandingResource):
    """HubSpot CRM v3 list-contacts pages: ``<landing>/hubspot/contacts/*.json``.

    ``read(since)`` returns contacts whose ``updatedAt`` is at or after ``since``, as the CRM
    search API does with a ``lastmodifieddate`` filter.
    """

    lookback_minutes: int = 60

    @property
    def root(self) -> str:
        return self.landing("hubspot", "contacts")

    def files(self) -> list[str]:
        self.require_landing()
        return _files_in(self.root, ".json")

    def read(self, since: datetime | None) -> pl.DataFrame:
        columns: dict[str, list] = {name: [] for name in HUBSPOT_SCHEMA}
        pages = self.files()
        for page in pages:
            body = orjson.loads(store_for(page).read_bytes(page))
            source_file = str(page)
            for position, contact in enumerate(body.get("results", []), start=1):
                # Archiving a contact may leave updatedAt as it was: archivedAt counts too.
                stamps = [_parse_iso(contact.get(k)) for k in ("updatedAt", "archivedAt")]
                updated = max((t for t in stamps if t is not None), default=None)
                if since is not None and (updated is None or updated < since):
                    continue
                props = contact.get("properties") or {}
                columns["_raw"].append(orjson.dumps(contact).decode())
                columns["_source_file"].append(source_file)
                columns["_line"].append(position)
                columns["id"].append(None if contact.get("id") is None else str(contact["id"]))
                for name in HUBSPOT_FIELDS:
                    value = props.get(name)
                    columns[name].append(None if value is None else str(value))
                columns["properties"].append(orjson.dumps(props).decode())
                columns["createdAt"].append(contact.get("createdAt"))
                columns["updatedAt"].append(contact.get("updatedAt"))
                columns["archived"].append(str(contact.get("archived", False)).lower())
        # Built a column at a time: a frame from one dict per row cost as much as the reading.
        return pl.DataFrame(
            [pl.Series(name, columns[name], dtype=dtype) for name, dtype in HUBSPOT_SCHEMA.items()]
        )


SALESFORCE_SCHEMA = {**RAW_SCHEMA, "_page_error": pl.String}
SALESFORCE_FOLDERS = {"salesforce_contacts": "contact", "salesforce_leads": "lead"}


class SalesforceRecordsSource(LandingResource):
    """Salesforce REST API SOQL query response pages of one object:
    ``<landing>/salesforce/<contact|lead>/*.json`` (``{"totalSize", "done", "nextRecordsUrl",
    "records": [...]}``), as an export or as the live pull saves them.

    ``read(since)`` returns the records whose ``SystemModstamp`` is at or after ``since`` (all
    when None), one row each, and one row per page that cannot be read as a query response, so
    that the page is quarantined with its reason instead of stopping the load.
    """

    source: str
    lookback_minutes: int = 60

    @property
    def root(self) -> str:
        return self.landing("salesforce", SALESFORCE_FOLDERS[self.source])

    def files(self) -> list[str]:
        self.require_landing()
        return _files_in(self.root, ".json")

    def read(self, since: datetime | None) -> pl.DataFrame:
        columns: dict[str, list] = {name: [] for name in SALESFORCE_SCHEMA}

        def add(raw: str, page: str, position: int, error: str | None) -> None:
            columns["_raw"].append(raw)
            columns["_source_file"].append(page)
            columns["_line"].append(position)
            columns["_page_error"].append(error)

        for page in self.files():
            data = store_for(page).read_bytes(page)
            try:
                body = orjson.loads(data)
            except orjson.JSONDecodeError:
                add(data.decode("utf-8", "replace"), page, 0, "invalid_json")
                continue
            records = body.get("records") if isinstance(body, dict) else None
            if not isinstance(records, list):
                add(data.decode("utf-8", "replace"), page, 0, "invalid_page")
                continue
            for position, record in enumerate(records, start=1):
                stamp = record.get("SystemModstamp") if isinstance(record, dict) else None
                modified = _parse_iso(stamp)
                if since is not None and modified is not None and modified < since:
                    continue
                add(orjson.dumps(record).decode(), page, position, None)
        return pl.DataFrame(
            [
                pl.Series(name, values, dtype=SALESFORCE_SCHEMA[name])
                for name, values in columns.items()
            ]
        )


SHOP_QUERIES = {
    "customers": (
        "select customer_id, email, first_name, last_name, created_at, updated_at "
        "from customers{where} order by updated_at, customer_id",
        "updated_at",
    ),
    "orders": (
        "select order_id, customer_id, status, total, currency, created_at, updated_at "
        "from orders{where} order by updated_at, order_id",
        "updated_at",
    ),
    "order_items": (
        "select i.order_id, i.product_id, i.quantity, i.unit_price, "
        "o.updated_at as order_updated_at "
        "from order_items i join orders o on o.order_id = i.order_id{where} "
        "order by o.updated_at, i.order_id, i.product_id",
        "o.updated_at",
    ),
    "products": (
        "select product_id, name, category, price from products order by product_id",
        None,
    ),
}


def _as_text(values: tuple) -> tuple | list:
    """A column's values as text (None stays None), as ``str`` writes each."""
    if all(value is None or type(value) is str for value in values):
        return values
    return [None if value is None else str(value) for value in values]


class ShopDatabase(dg.ConfigurableResource):
    """The shop's transactional database (``sqlite://`` or ``postgresql://``), read by SQL."""

    url: str = ""
    home: str = ""
    lookback_minutes: int = 60

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        check_shop_db_url(self.url)

    @property
    def resolved_url(self) -> str:
        return resolve_paths(home=self.home or None, shop_db_url=self.url or None).shop_db_url

    def read(self, table: str, since: datetime | None) -> pl.DataFrame:
        """Rows of ``table`` changed at or after ``since`` (all rows when None), as text."""
        query, column = SHOP_QUERIES[table]
        params: dict[str, str] = {}
        where = ""
        if since is not None and column is not None:
            where = f" where {column} >= :since"
            params["since"] = since.strftime("%Y-%m-%d %H:%M:%S")
        self._check_exists()
        engine = sa.create_engine(self.resolved_url)
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(table):
                    raise dg.Failure(
                        f"the shop database (INBOXGRAPH_SHOP_DB_URL={self.safe_url}) has no "
                        f"table {table}; point the setting at the shop's database, or run "
                        "`inboxgraph generate` to create a demo shop there",
                        allow_retries=False,
                    )
                result = conn.execute(sa.text(query.format(where=where)), params)
                names = list(result.keys())
                # The driver's rows as they are (a text query has no type processing to skip),
                # turned to text a column at a time: a column of text is taken whole.
                rows = result.cursor.fetchall() if result.cursor is not None else []
        except sa.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise dg.Failure(
                f"the shop database (INBOXGRAPH_SHOP_DB_URL={self.safe_url}) cannot be read: "
                f"{reason}"
            ) from None
        finally:
            engine.dispose()
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        source = f"{self.safe_url}#{table}"
        frame = pl.DataFrame(
            [
                pl.Series(name, _as_text(values), dtype=pl.String)
                for name, values in zip(names, columns, strict=True)
            ]
        )
        return frame.with_columns(
            pl.struct(names).struct.json_encode().alias("_raw"),
            pl.lit(source).alias("_source_file"),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_line"),
        )

    def _check_exists(self) -> None:
        """A SQLite URL must name a file that exists: connecting would create an empty one."""
        url = sa.engine.make_url(self.resolved_url)
        missing = url.database and not os.path.exists(url.database)
        if url.get_backend_name() == "sqlite" and missing:
            raise dg.Failure(
                f"the shop database {url.database} (INBOXGRAPH_SHOP_DB_URL) does not exist; "
                "point the setting at the shop's database, or run `inboxgraph generate` to "
                "create a demo shop",
                allow_retries=False,
            )

    @property
    def safe_url(self) -> str:
        """The URL without a password, fit for metadata and logs."""
        return sa.engine.make_url(self.resolved_url).render_as_string(hide_password=True)


class EnrichmentSource(LandingResource):
    """Third-party enrichment CSV files: ``<landing>/enrichment/<provider>.csv``."""

    @property
    def root(self) -> str:
        return self.landing("enrichment")

    def files(self) -> list[str]:
        self.require_landing()
        return _files_in(self.root, ".csv")

    def read(self, path: str) -> pl.DataFrame:
        rows = pl.read_csv(_read_text_file(str(path)), infer_schema=False, encoding="utf8-lossy")
        rows = rows.rename({c: c.strip().lower() for c in rows.columns})
        return rows.with_columns(
            pl.struct(rows.columns).struct.json_encode().alias("_raw"),
            pl.lit(str(path)).alias("_source_file"),
            pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("_line"),
        )
