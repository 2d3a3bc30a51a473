"""Where the landing zone and the lake live: a local folder, or S3 (and S3-compatible stores).

Both kinds offer the few operations the platform needs: list files under a prefix, read one,
write one atomically, delete one. Object operations on S3 go through dagster-aws's
``S3Resource`` (its boto3 client, configured by INBOXGRAPH_S3_ENDPOINT_URL and the usual AWS
variables); Parquet is read in place by polars and DuckDB with the same settings.

A write on S3 goes to a hidden key beside the target first and is then switched into place with
a server-side copy, so a reader sees the old object or the new one, never a partial upload.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

import duckdb

from inboxgraph.settings import is_remote
from inboxgraph.storage import write_bytes_atomic

HTTPFS_VERSION = "v1.5.5"


class Store(Protocol):
    def list(self, url: str, suffix: str = "") -> list[str]:
        """Every file under ``url`` (recursively) whose name ends with ``suffix``, sorted."""
        ...

    def exists(self, url: str) -> bool: ...

    def read_bytes(self, url: str) -> bytes: ...

    def write_atomic(self, url: str, data: bytes) -> None: ...

    def delete(self, url: str) -> bool: ...


class LocalStore:
    def list(self, url: str, suffix: str = "") -> list[str]:
        root = Path(url)
        if not root.is_dir():
            return []
        return sorted(
            str(p) for p in root.rglob(f"*{suffix}") if p.is_file() and not p.name.startswith(".")
        )

    def exists(self, url: str) -> bool:
        return Path(url).exists()

    def read_bytes(self, url: str) -> bytes:
        return Path(url).read_bytes()

    def write_atomic(self, url: str, data: bytes) -> None:
        write_bytes_atomic(Path(url), data)

    def delete(self, url: str) -> bool:
        path = Path(url)
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None
    region: str
    access_key_id: str | None
    secret_access_key: str | None

    @classmethod
    def from_environment(cls) -> S3Settings:
        return cls(
            endpoint_url=os.environ.get("INBOXGRAPH_S3_ENDPOINT_URL") or None,
            region=os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1",
            access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or None,
            secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        )


def _split(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    return parsed.netloc, parsed.path.lstrip("/")


class S3Store:
    def __init__(self, settings: S3Settings) -> None:
        from dagster_aws.s3 import S3Resource

        self.settings = settings
        self.client = S3Resource(
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
        ).get_client()

    def list(self, url: str, suffix: str = "") -> list[str]:
        bucket, prefix = _split(url)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if name.endswith(suffix) and not name.startswith("."):
                    found.append(f"s3://{bucket}/{item['Key']}")
        return sorted(found)

    def exists(self, url: str) -> bool:
        bucket, key = _split(url)
        response = self.client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return any(item["Key"] == key for item in response.get("Contents", []))

    def read_bytes(self, url: str) -> bytes:
        bucket, key = _split(url)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def write_atomic(self, url: str, data: bytes) -> None:
        bucket, key = _split(url)
        folder, _, name = key.rpartition("/")
        aside = f"{folder}/.{name}.{uuid.uuid4().hex}.tmp" if folder else f".{name}.tmp"
        self.client.put_object(Bucket=bucket, Key=aside, Body=data)
        try:
            self.client.copy_object(
                Bucket=bucket, Key=key, CopySource={"Bucket": bucket, "Key": aside}
            )
        finally:
            self.client.delete_object(Bucket=bucket, Key=aside)

    def delete(self, url: str) -> bool:
        existed = self.exists(url)
        bucket, key = _split(url)
        self.client.delete_object(Bucket=bucket, Key=key)
        return existed


@cache
def _s3_store(settings: S3Settings) -> S3Store:
    return S3Store(settings)


def store_for(url: str) -> Store:
    if not is_remote(url):
        return LocalStore()
    if url.startswith("s3://"):
        return _s3_store(S3Settings.from_environment())
    raise ValueError(
        f"unsupported location {url!r}: use a local folder or an s3://bucket/prefix URL"
    )


def join(url: str, *parts: str) -> str:
    if is_remote(url):
        return "/".join([url.rstrip("/"), *parts])
    return str(Path(url).joinpath(*parts))


def name_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def polars_storage_options(url: str) -> dict[str, str] | None:
    """``storage_options`` for polars reading ``url`` (None for a local path)."""
    if not url.startswith("s3://"):
        return None
    settings = S3Settings.from_environment()
    options = {"aws_region": settings.region}
    if settings.endpoint_url:
        options["aws_endpoint_url"] = settings.endpoint_url
        options["aws_allow_http"] = str(settings.endpoint_url.startswith("http://")).lower()
    if settings.access_key_id and settings.secret_access_key:
        options["aws_access_key_id"] = settings.access_key_id
        options["aws_secret_access_key"] = settings.secret_access_key
    return options


def httpfs_extension_path() -> str:
    """DuckDB's httpfs extension from its PyPI wheel (nothing is downloaded at run time)."""
    import duckdb_extension_httpfs

    return str(
        Path(duckdb_extension_httpfs.__file__).parent
        / "extensions"
        / HTTPFS_VERSION
        / "httpfs.duckdb_extension"
    )


def duckdb_secret_sql() -> str:
    """``CREATE SECRET`` for DuckDB's S3 access, from the same settings as the store."""
    settings = S3Settings.from_environment()
    options = [f"REGION '{settings.region}'"]
    if settings.access_key_id and settings.secret_access_key:
        options += [
            f"KEY_ID '{settings.access_key_id}'",
            f"SECRET '{settings.secret_access_key}'",
        ]
    if settings.endpoint_url:
        endpoint = urlparse(settings.endpoint_url)
        options += [
            f"ENDPOINT '{endpoint.netloc}'",
            "URL_STYLE 'path'",
            f"USE_SSL {str(endpoint.scheme == 'https').lower()}",
        ]
    return f"create or replace secret inboxgraph_s3 (TYPE s3, {', '.join(options)})"


def configure_duckdb(connection: duckdb.DuckDBPyConnection, url: str) -> None:
    """Let ``connection`` read ``url`` in place (loads httpfs and the S3 secret for s3://)."""
    if url.startswith("s3://"):
        connection.execute(f"load '{httpfs_extension_path()}'")
        connection.execute(duckdb_secret_sql())


def dbt_environment(lake_url: str) -> dict[str, str]:
    """Variables the dbt profile's ``s3`` output reads, for a lake at ``lake_url``."""
    if not lake_url.startswith("s3://"):
        return {}
    settings = S3Settings.from_environment()
    endpoint = urlparse(settings.endpoint_url) if settings.endpoint_url else None
    return {
        "INBOXGRAPH_DBT_TARGET": "s3",
        "INBOXGRAPH_DUCKDB_HTTPFS": httpfs_extension_path(),
        "INBOXGRAPH_S3_REGION": settings.region,
        "INBOXGRAPH_S3_ENDPOINT": endpoint.netloc if endpoint else "s3.amazonaws.com",
        "INBOXGRAPH_S3_URL_STYLE": "path" if endpoint else "vhost",
        "INBOXGRAPH_S3_USE_SSL": "false" if endpoint and endpoint.scheme == "http" else "true",
    }


def apply_dbt_environment(lake_url: str) -> None:
    """Set the dbt profile's S3 variables that are not set already."""
    for name, value in dbt_environment(lake_url).items():
        if not os.environ.get(name):
            os.environ[name] = value
