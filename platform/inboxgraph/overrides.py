"""Identity overrides: the rows of the dbt seed ``identity_overrides.csv``.

``never_link`` keeps two identifiers in different people and ``link`` joins them, on every run
(inboxgraph.identity applies them); each row says who wrote it and why. The command line's
``inboxgraph identity split|link`` appends rows here; the file is versioned with the project.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

from inboxgraph.explain import IDENTIFIER_TYPES, normalized

COLUMNS = (
    "rule",
    "left_type",
    "left_value",
    "right_type",
    "right_value",
    "author",
    "reason",
    "created_at",
)
RULES = {"split": "never_link", "link": "link"}


class OverrideError(ValueError):
    """An override that cannot be written; the message says why."""


@dataclass(frozen=True)
class Override:
    rule: str
    left: tuple[str, str]
    right: tuple[str, str]
    author: str
    reason: str
    created_at: str

    def row(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "left_type": self.left[0],
            "left_value": self.left[1],
            "right_type": self.right[0],
            "right_value": self.right[1],
            "author": self.author,
            "reason": self.reason,
            "created_at": self.created_at,
        }

    def describe(self) -> str:
        return f"{self.rule}({self.left[0]} {self.left[1]}, {self.right[0]} {self.right[1]})"


def overrides_file(project_dir: Path | None = None) -> Path:
    """The seed file of the dbt project the platform runs (INBOXGRAPH_DBT_PROJECT_DIR)."""
    if project_dir is None:
        from inboxgraph.project_files import dbt_project_dir

        project_dir = dbt_project_dir()
    return Path(project_dir) / "seeds" / "identity_overrides.csv"


def parse_identifier(text: str) -> tuple[str, str]:
    """``type:value`` (the value may hold colons) as the identity map holds it."""
    kind, sep, value = text.partition(":")
    kind = kind.strip().replace("-", "_")
    if not sep or kind not in IDENTIFIER_TYPES or not value.strip():
        raise OverrideError(
            f"{text!r} is not an identifier: write type:value, type one of "
            f"{', '.join(IDENTIFIER_TYPES)}"
        )
    return kind, normalized(kind, value)


def read_overrides(path: Path) -> list[Override]:
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [
            Override(
                row["rule"],
                (row["left_type"], row["left_value"]),
                (row["right_type"], row["right_value"]),
                row["author"],
                row["reason"],
                row["created_at"],
            )
            for row in csv.DictReader(handle)
        ]


def add_override(
    command: str,
    left: tuple[str, str],
    right: tuple[str, str],
    author: str,
    reason: str,
    path: Path | None = None,
) -> Override:
    """Append a rule (``split`` writes never_link, ``link`` writes link) and return it.

    Refuses a rule that names one identifier twice, repeats a rule already there, or
    contradicts one (a split of two identifiers a ``link`` rule joins, or the reverse).
    """
    path = path or overrides_file()
    rule = RULES[command]
    if left == right:
        raise OverrideError("an override needs two different identifiers")
    if not author.strip() or not reason.strip():
        raise OverrideError("an override needs an author and a reason")
    pair = {left, right}
    # The lock lives outside the project: the seeds folder holds the seed and nothing else.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    with FileLock(Path(tempfile.gettempdir()) / f"inboxgraph-overrides-{digest}.lock"):
        for held in read_overrides(path):
            if {held.left, held.right} != pair:
                continue
            if held.rule == rule:
                raise OverrideError(f"{held.describe()} is already there ({held.reason})")
            raise OverrideError(
                f"{held.describe()} contradicts it: remove that row from {path} first"
            )
        override = Override(
            rule,
            left,
            right,
            author.strip(),
            " ".join(reason.split()),
            datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        )
        new = not path.exists() or path.stat().st_size == 0
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow(override.row())
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", newline="") as handle:
            handle.write(buffer.getvalue())
    return override
