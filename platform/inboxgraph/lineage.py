"""Column lineage of the dbt models, kept between runs (beside the dbt manifest, so every platform
home built from one checkout shares it).

dagster-dbt works a model's column lineage out after every build (sqlglot over the model's SQL
and its parents' column schemas), a cost per model on every run, though the result
changes only with the project's code or a model's columns. The cache keeps each model's lineage
under the project's fingerprint (every node's checksum and the project's macros) and the
model's column schema. A run whose project is the one the cache was filled from, and whose models
the cache all holds, reuses it and fetches column schemas only; any other run works lineage out
again and adds it to the cache. A model whose columns changed since gets no lineage this run and
is forgotten, so the next run that builds it works lineage out again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from inboxgraph.rebuild import macros_digest
from inboxgraph.storage import write_bytes_atomic

LINEAGE = "dagster/column_lineage"
SCHEMA = "dagster/column_schema"
# The same lineage as a table the open-source UI shows in a materialization's metadata.
UPSTREAM_COLUMNS = "upstream_columns"


def project_fingerprint(manifest: Mapping[str, Any]) -> str:
    """What the models' lineage depends on besides their columns: their code and macros."""
    parts = {
        "nodes": {
            uid: node.get("checksum", {}).get("checksum")
            for uid, node in manifest.get("nodes", {}).items()
        },
        "macros": macros_digest(manifest),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _schema_key(schema: Any) -> str:
    return hashlib.sha256(dg.serialize_value(schema).encode()).hexdigest()


class ColumnLineageCache:
    """Each model's column lineage (serialized), for one project fingerprint."""

    def __init__(self, path: Path, fingerprint: str, building: Iterable[str] = ()) -> None:
        """``building``: the unique ids of the models this run builds; the cache is reusable
        only when it holds each of them (a run of a subset fills it with that subset only)."""
        self.path = path
        self.fingerprint = fingerprint
        self.models: dict[str, dict[str, str]] = {}
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            saved = {}
        if saved.get("fingerprint") == fingerprint:
            self.models = saved.get("models", {})
        self.reusable = bool(self.models) and set(building) <= self.models.keys()

    def attach(self, events: Iterator[Any]) -> Iterator[Any]:
        """Each model's event with lineage: from the cache when reusable, else stored in it."""
        for event in events:
            # An Output's metadata values are MetadataValue objects (the value is `.value`).
            metadata = event.metadata if isinstance(event, dg.Output) else {}
            if "unique_id" not in metadata or SCHEMA not in metadata:
                yield event
                continue
            unique_id = metadata["unique_id"].value
            key = _schema_key(metadata[SCHEMA].value)
            if self.reusable:
                held = self.models.get(unique_id)
                if held is not None and held["schema"] == key:
                    if held["lineage"] is not None:
                        lineage = dg.deserialize_value(held["lineage"])
                        event = event.with_metadata(with_upstream_columns(metadata, lineage))
                else:
                    # Its columns changed: forgotten, so the next run that builds it works
                    # lineage out again.
                    self.models.pop(unique_id, None)
            else:
                # A model with no lineage (the Python model: sqlglot reads SQL only) is held
                # too, so that the cache counts as holding every model of the run.
                self.models[unique_id] = {
                    "schema": key,
                    "lineage": dg.serialize_value(metadata[LINEAGE].value)
                    if LINEAGE in metadata
                    else None,
                }
                if LINEAGE in metadata:
                    lineage = metadata[LINEAGE].value
                    event = event.with_metadata(with_upstream_columns(metadata, lineage))
            yield event
        self.save()

    def save(self) -> None:
        """Written aside, then renamed over the cache: homes that share it may save at once."""
        saved = {"fingerprint": self.fingerprint, "models": self.models}
        write_bytes_atomic(self.path, json.dumps(saved).encode())


def with_upstream_columns(
    metadata: Mapping[str, Any], lineage: dg.TableColumnLineage
) -> dict[str, Any]:
    """``metadata`` with the column lineage, and each column of the schema described by the
    upstream columns it is computed from: Dagster's open-source UI shows the column schema
    (the asset's Columns table) but not ``dagster/column_lineage``; the same lineage is also a
    table in the materialization's metadata (``upstream_columns``)."""
    schema = metadata[SCHEMA].value
    columns = []
    rows = ["| column | computed from |", "|---|---|"]
    for column in schema.columns:
        deps = lineage.deps_by_column.get(column.name, [])
        upstream = ", ".join(
            sorted(f"{dep.asset_key.to_user_string()}.{dep.column_name}" for dep in deps)
        )
        note = f"From {upstream}." if upstream else ""
        rows.append(f"| {column.name} | {upstream or '(a constant, or computed here)'} |")
        description = " ".join(part for part in (column.description, note) if part) or None
        columns.append(
            dg.TableColumn(
                name=column.name,
                type=column.type,
                description=description,
                constraints=column.constraints,
                tags=column.tags,
            )
        )
    return {
        **metadata,
        LINEAGE: lineage,
        SCHEMA: dg.TableSchema(columns=columns, constraints=schema.constraints),
        UPSTREAM_COLUMNS: dg.MetadataValue.md("\n".join(rows)),
    }
