"""Atomic file writes: write beside the target, fsync, then rename over it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def commit(temporary: Path, target: Path) -> None:
    """Atomically replace ``target`` with ``temporary`` and make the rename durable."""
    os.replace(temporary, target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_atomic(
    target: Path,
    write: Callable[[Path], None],
    commit_fn: Callable[[Path, Path], None] = commit,
) -> Path:
    """Write ``target`` through ``write(temporary_path)``; readers never see a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        write(temporary)
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        commit_fn(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def write_bytes_atomic(target: Path, data: bytes) -> Path:
    return write_atomic(target, lambda temporary: temporary.write_bytes(data))
