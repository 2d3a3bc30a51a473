"""The lake: partitioned Parquet under ``raw/`` and ``quarantine/``, written atomically.

The lake is a local folder or an ``s3://bucket/prefix`` (see ``inboxgraph.objectstore``).

Every partition is a single ``data.parquet`` file in a hive-style folder
(``raw/web_events/received_date=2026-11-27/data.parquet``). A write goes to a hidden temporary
file beside the target and is committed by an atomic rename, so a reader sees either the old
partition or the new one, never a half-written file; re-writing a partition replaces it.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import polars as pl

from inboxgraph.objectstore import join, polars_storage_options, store_for
from inboxgraph.settings import check_location, is_remote, require_local, resolve_paths
from inboxgraph.storage import commit, write_atomic

ZONES = ("raw", "quarantine")
PARTITION_FILE = "data.parquet"
# zstd at level 1: files as small as at the default level (measured on web events) for half
# the write time, which the stream worker and the daily loads pay on every row.
PARQUET_WRITE = {"compression": "zstd", "compression_level": 1, "statistics": True}


class LakeResource(dg.ConfigurableResource):
    """Read and write the lake's partitions (a local folder in the embedded default)."""

    url: str = ""
    home: str = ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        check_location("INBOXGRAPH_LAKE_URL", self.url)

    @property
    def location(self) -> str:
        """The lake's URL: a local path or ``s3://bucket/prefix``."""
        return resolve_paths(home=self.home or None, lake_url=self.url or None).lake_url

    @property
    def remote(self) -> bool:
        return is_remote(self.location)

    @property
    def root(self) -> Path:
        """The lake's folder, for the parts that work on a local lake only."""
        return Path(require_local(self.location, "the lake (INBOXGRAPH_LAKE_URL)"))

    def url_of(
        self,
        zone: str,
        source: str,
        partition: Mapping[str, str] | None = None,
        name: str = PARTITION_FILE,
    ) -> str:
        if zone not in ZONES:
            raise ValueError(f"unknown lake zone {zone!r}; expected one of {ZONES}")
        folders = [f"{key}={value}" for key, value in (partition or {}).items()]
        return join(self.location, zone, source, *folders, name)

    @property
    def storage_options(self) -> dict[str, str] | None:
        return polars_storage_options(self.location)

    def _put(self, url: str, frame: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.write_parquet(buffer, **PARQUET_WRITE)
        store_for(url).write_atomic(url, buffer.getvalue())

    def table_dir(self, zone: str, source: str) -> Path:
        if zone not in ZONES:
            raise ValueError(f"unknown lake zone {zone!r}; expected one of {ZONES}")
        return self.root / zone / source

    def partition_path(
        self, zone: str, source: str, partition: Mapping[str, str] | None = None
    ) -> Path:
        folder = self.table_dir(zone, source)
        for key, value in (partition or {}).items():
            folder = folder / f"{key}={value}"
        return folder / PARTITION_FILE

    def write(
        self,
        zone: str,
        source: str,
        frame: pl.DataFrame,
        partition: Mapping[str, str] | None = None,
    ) -> str:
        """Replace one partition with ``frame`` atomically; returns the partition's path."""
        if self.remote:
            url = self.url_of(zone, source, partition)
            self._put(url, frame)
            return url
        target = self.partition_path(zone, source, partition)
        write_atomic(
            target,
            lambda temporary: frame.write_parquet(temporary, **PARQUET_WRITE),
            self._commit,
        )
        return str(target)

    def write_file(self, target: Path | str, frame: pl.DataFrame) -> str:
        """Write one named Parquet file of a table atomically (stream batches)."""
        if is_remote(str(target)):
            self._put(str(target), frame)
            return str(target)
        target = Path(target)
        write_atomic(
            target,
            lambda temporary: frame.write_parquet(temporary, **PARQUET_WRITE),
            self._commit,
        )
        return str(target)

    def _commit(self, temporary: Path, target: Path) -> None:
        commit(temporary, target)

    def delete_partition(
        self, zone: str, source: str, partition: Mapping[str, str] | None = None
    ) -> bool:
        if self.remote:
            url = self.url_of(zone, source, partition)
            return store_for(url).delete(url)
        target = self.partition_path(zone, source, partition)
        if target.exists():
            target.unlink()
            return True
        return False

    def files(self, zone: str, source: str) -> list[Path] | list[str]:
        """The table's Parquet files (paths on a local lake, URLs on an object store)."""
        if self.remote:
            folder = join(self.location, zone, source)
            return store_for(folder).list(folder, PARTITION_FILE)
        folder = self.table_dir(zone, source)
        return sorted(folder.rglob(f"*{PARTITION_FILE}")) if folder.is_dir() else []

    def scan(self, zone: str, source: str) -> pl.LazyFrame | None:
        """Every partition of a table with its hive partition columns; None when empty."""
        files = self.files(zone, source)
        if not files:
            return None
        return pl.scan_parquet(
            [str(f) for f in files],
            storage_options=self.storage_options,
            hive_partitioning=True,
            missing_columns="insert",
            extra_columns="ignore",
        )

    def read_partition(
        self, zone: str, source: str, partition: Mapping[str, str] | None = None
    ) -> pl.DataFrame | None:
        if self.remote:
            url = self.url_of(zone, source, partition)
            store = store_for(url)
            return pl.read_parquet(io.BytesIO(store.read_bytes(url))) if store.exists(url) else None
        target = self.partition_path(zone, source, partition)
        return pl.read_parquet(target) if target.exists() else None

    def fingerprints(self, source: str) -> pl.Series:
        """Fingerprints of every record of ``source`` already in the lake, landed or not."""
        frames = [
            lf.select("_fingerprint")
            for zone in ZONES
            if (lf := self.scan(zone, source)) is not None
        ]
        if not frames:
            return pl.Series("_fingerprint", [], dtype=pl.UInt64)
        return pl.concat(frames).collect().get_column("_fingerprint").unique()

    def max_value(self, source: str, column: str) -> object | None:
        lf = self.scan("raw", source)
        if lf is None:
            return None
        return lf.select(pl.col(column).max()).collect().item()
