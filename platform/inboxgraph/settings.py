"""Where the platform keeps its data, derived from INBOXGRAPH_HOME at run time.

Every variable in the configuration table may be empty; an empty value means "derive it from
INBOXGRAPH_HOME". Dagster resources receive the variables through ``dg.EnvVar``; the command
line calls :func:`ensure_environment` first so that unset variables resolve to their defaults.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_HOME = "data"
DEFAULT_EVENTS_TOPIC = "inboxgraph.events"

# Variables that resources read through dg.EnvVar: each must exist (possibly empty).
OPTIONAL_VARIABLES = (
    "INBOXGRAPH_LANDING_URL",
    "INBOXGRAPH_LAKE_URL",
    "INBOXGRAPH_WAREHOUSE",
    "INBOXGRAPH_SHOP_DB_URL",
    "INBOXGRAPH_S3_ENDPOINT_URL",
    "INBOXGRAPH_ALERT_WEBHOOK_URL",
    "INBOXGRAPH_WRITE_KEY",
    "KAFKA_BOOTSTRAP_SERVERS",
    # Mixpanel's Raw Event Export API (live mode when the secret is set)
    "INBOXGRAPH_MIXPANEL_API_URL",
    "INBOXGRAPH_MIXPANEL_PROJECT_ID",
    "INBOXGRAPH_MIXPANEL_USERNAME",
    "INBOXGRAPH_MIXPANEL_SECRET",
    "INBOXGRAPH_MIXPANEL_START_DATE",
    # HubSpot's CRM API (live mode when the private-app token is set)
    "INBOXGRAPH_HUBSPOT_TOKEN",
    "INBOXGRAPH_HUBSPOT_API_URL",
    # Salesforce's REST API (live mode when the instance URL is set, with a token or a
    # connected app's client credentials)
    "INBOXGRAPH_SALESFORCE_INSTANCE_URL",
    "INBOXGRAPH_SALESFORCE_TOKEN",
    "INBOXGRAPH_SALESFORCE_CLIENT_ID",
    "INBOXGRAPH_SALESFORCE_CLIENT_SECRET",
    # The ESPs' APIs (an audience is synced when its ESP's key is set; else files are written)
    "INBOXGRAPH_MAILCHIMP_API_KEY",
    "INBOXGRAPH_MAILCHIMP_LIST_ID",
    "INBOXGRAPH_MAILCHIMP_API_URL",
    "INBOXGRAPH_KLAVIYO_API_KEY",
    "INBOXGRAPH_KLAVIYO_LIST_ID",
    "INBOXGRAPH_KLAVIYO_API_URL",
    "INBOXGRAPH_BRAZE_API_KEY",
    "INBOXGRAPH_BRAZE_API_URL",
    # The collector's ESP webhook endpoints (one per ESP whose secret is set)
    "INBOXGRAPH_MAILCHIMP_WEBHOOK_SECRET",
    "INBOXGRAPH_SENDGRID_WEBHOOK_SECRET",
    "INBOXGRAPH_KLAVIYO_WEBHOOK_SECRET",
)


class ConfigurationError(ValueError):
    """A configuration variable holds a value the platform cannot use; the message is one
    sentence that names the variable."""


SHOP_DB_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg2")


def check_location(variable: str, value: str) -> str:
    """``value`` when it is a local path or an s3:// URL (or empty: derived from the home)."""
    if value and is_remote(value) and not value.startswith("s3://"):
        raise ConfigurationError(
            f"{variable}={value!r} is not supported: use a local folder or s3://bucket/prefix"
        )
    return value


def check_shop_db_url(value: str) -> str:
    """``value`` when it names a database the shop extract reads (or is empty)."""
    scheme = value.split("://", 1)[0] if "://" in value else None
    if value and scheme not in SHOP_DB_SCHEMES:
        raise ConfigurationError(
            f"INBOXGRAPH_SHOP_DB_URL={value!r} is not supported: use sqlite:///path/to/shop.db "
            "or postgresql://user@host/database"
        )
    return value


def safe_url(url: str) -> str:
    """``url`` without its password, fit for output and logs."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))


def check_environment() -> None:
    """Raise ConfigurationError for the first configuration variable that cannot work."""
    for variable in ("INBOXGRAPH_LANDING_URL", "INBOXGRAPH_LAKE_URL"):
        check_location(variable, os.environ.get(variable, ""))
    check_shop_db_url(os.environ.get("INBOXGRAPH_SHOP_DB_URL", ""))
    warehouse = os.environ.get("INBOXGRAPH_WAREHOUSE", "")
    if warehouse and is_remote(warehouse):
        raise ConfigurationError(
            f"INBOXGRAPH_WAREHOUSE={warehouse!r} is not supported: use the path of a DuckDB "
            "file (a MotherDuck warehouse is a dbt target, see the README)"
        )


@dataclass(frozen=True)
class Paths:
    """The resolved locations of every part of the embedded platform."""

    home: str
    landing_url: str
    lake_url: str
    warehouse: str
    shop_db_url: str
    dagster_home: str

    @property
    def exports(self) -> str:
        return join_url(self.home, "exports")


def join_url(base: str, *parts: str) -> str:
    """Join a local path or an s3:// URL with further path segments."""
    base = base.rstrip("/")
    return "/".join([base, *[p.strip("/") for p in parts if p]])


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def require_local(url: str, what: str) -> str:
    """The path of a local location; a clear error for an object-store URL.

    For the parts that need a file system (erasure rewrites files in place, the stream worker
    and the collector's batch path append and fsync); ingestion, the warehouse and the checks
    also work on s3://.
    """
    if is_remote(url):
        raise ValueError(
            f"{what} at {url!r}: this needs a local folder (or a mounted volume), "
            "not an object-store URL"
        )
    return url.removeprefix("file://")


def resolve_paths(
    home: str | None = None,
    landing_url: str | None = None,
    lake_url: str | None = None,
    warehouse: str | None = None,
    shop_db_url: str | None = None,
) -> Paths:
    """Resolve every location, empty or missing values falling back to INBOXGRAPH_HOME."""
    home = home or os.environ.get("INBOXGRAPH_HOME") or DEFAULT_HOME
    if not is_remote(home):
        home = str(Path(home).expanduser().absolute())
    landing = landing_url or os.environ.get("INBOXGRAPH_LANDING_URL") or join_url(home, "landing")
    lake = lake_url or os.environ.get("INBOXGRAPH_LAKE_URL") or join_url(home, "lake")
    wh = warehouse or os.environ.get("INBOXGRAPH_WAREHOUSE") or join_url(home, "warehouse.duckdb")
    shop = (
        shop_db_url
        or os.environ.get("INBOXGRAPH_SHOP_DB_URL")
        or f"sqlite:///{join_url(home, 'landing', 'shop.db')}"
    )
    dagster_home = os.environ.get("DAGSTER_HOME") or join_url(home, "dagster")
    return Paths(home, landing, lake, wh, shop, dagster_home)


def ensure_environment(home: str | None = None) -> Paths:
    """Fill in unset configuration variables with their defaults and return the paths.

    Called by the command line before Dagster loads the definitions, so that every
    ``dg.EnvVar`` resolves; values already set are kept.
    """
    if home:
        os.environ["INBOXGRAPH_HOME"] = home
    check_environment()
    paths = resolve_paths()
    os.environ["INBOXGRAPH_HOME"] = paths.home
    defaults = {
        "INBOXGRAPH_LANDING_URL": paths.landing_url,
        "INBOXGRAPH_LAKE_URL": paths.lake_url,
        "INBOXGRAPH_WAREHOUSE": paths.warehouse,
        "INBOXGRAPH_SHOP_DB_URL": paths.shop_db_url,
        "DAGSTER_HOME": paths.dagster_home,
        "INBOXGRAPH_EVENTS_TOPIC": DEFAULT_EVENTS_TOPIC,
        "SODA_CORE_TELEMETRY_ENABLED": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    for name, value in defaults.items():
        if not os.environ.get(name):
            os.environ[name] = value
    for name in OPTIONAL_VARIABLES:
        os.environ.setdefault(name, "")
    return paths
