"""Where audience exports are written (``$INBOXGRAPH_HOME/exports`` in the embedded default)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from inboxgraph.activation import ExportStore
from inboxgraph.settings import resolve_paths


class ExportsResource(dg.ConfigurableResource):
    home: str = ""

    @property
    def root(self) -> Path:
        return Path(resolve_paths(home=self.home or None).exports)

    def store(self) -> ExportStore:
        return ExportStore(self.root)
