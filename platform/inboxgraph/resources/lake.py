"""The lake: partitioned Parquet under ``raw/`` and ``quarantine/``, written atomically.

Every partition is a single ``data.parquet`` file in a hive-style folder
(``raw/web_events/received_date=2026-11-27/data.parquet``). A write goes to a hidden temporary
file beside the target and is committed by an atomic rename, so a reader sees either the old
partition or the new one, never a half-written file; re-writing a partition replaces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import polars as pl

from inboxgraph.settings import require_local, resolve_paths
from inboxgraph.storage import commit, write_atomic

ZONES = ("raw", "quarantine")
PARTITION_FILE = "data.parquet"


class LakeResource(dg.ConfigurableResource):
    """Read and write the lake's partitions (a local folder in the embedded default)."""

    url: str = ""
    home: str = ""

    @property
    def root(self) -> Path:
        url = resolve_paths(home=self.home or None, lake_url=self.url or None).lake_url
        return Path(require_local(url, "the lake (INBOXGRAPH_LAKE_URL)"))

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
        target = self.partition_path(zone, source, partition)
        write_atomic(
            target,
            lambda temporary: frame.write_parquet(temporary, compression="zstd", statistics=True),
            self._commit,
        )
        return str(target)

    def write_file(self, target: Path, frame: pl.DataFrame) -> str:
        """Write one named Parquet file of a table atomically (stream batches)."""
        write_atomic(
            target,
            lambda temporary: frame.write_parquet(temporary, compression="zstd", statistics=True),
            self._commit,
        )
        return str(target)

    def _commit(self, temporary: Path, target: Path) -> None:
        commit(temporary, target)

    def delete_partition(
        self, zone: str, source: str, partition: Mapping[str, str] | None = None
    ) -> bool:
        target = self.partition_path(zone, source, partition)
        if target.exists():
            target.unlink()
            return True
        return False

    def files(self, zone: str, source: str) -> list[Path]:
        folder = self.table_dir(zone, source)
        return sorted(folder.rglob(f"*{PARTITION_FILE}")) if folder.is_dir() else []

    def scan(self, zone: str, source: str) -> pl.LazyFrame | None:
        """Every partition of a table with its hive partition columns; None when empty."""
        files = self.files(zone, source)
        if not files:
            return None
        return pl.scan_parquet(
            [str(f) for f in files],
            hive_partitioning=True,
            missing_columns="insert",
            extra_columns="ignore",
        )

    def read_partition(
        self, zone: str, source: str, partition: Mapping[str, str] | None = None
    ) -> pl.DataFrame | None:
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
