"""Atomic writes: write beside the target, fsync, then rename over it (a file, or a whole folder
of files at once)."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# A hidden temporary this old was left by a write that died; a younger one may be another
# process's write in progress (two stream workers creating the same file when they start).
STALE_AFTER_SECONDS = 3600


def is_stale(temporary: Path) -> bool:
    """A hidden temporary old enough to be no live write's (not if it is gone meanwhile)."""
    try:
        return time.time() - temporary.stat().st_mtime > STALE_AFTER_SECONDS
    except FileNotFoundError:  # its writer renamed or removed it
        return False


def stale_temporaries(folder: Path, name: str = "*") -> list[Path]:
    """Hidden temporaries in ``folder`` of writes of ``name`` (a glob) that died."""
    return [path for path in folder.glob(f".{name}.*.tmp") if is_stale(path)]


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def commit(temporary: Path, target: Path) -> None:
    """Atomically replace ``target`` with ``temporary`` and make the rename durable."""
    os.replace(temporary, target)
    _fsync(target.parent)


def write_atomic(
    target: Path,
    write: Callable[[Path], None],
    commit_fn: Callable[[Path, Path], None] = commit,
) -> Path:
    """Write ``target`` through ``write(temporary_path)``; readers never see a partial file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(target.parent, target.name):
        stale.unlink(missing_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    try:
        write(temporary)
        _fsync(temporary)
        commit_fn(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def write_bytes_atomic(target: Path, data: bytes) -> Path:
    return write_atomic(target, lambda temporary: temporary.write_bytes(data))


def write_folder_atomic(target: Path, files: dict[str, bytes]) -> list[Path]:
    """Create the folder ``target`` holding ``files`` (name -> bytes), all at once.

    The files are written into a hidden sibling folder, each is fsynced, and the folder is
    renamed to ``target``: readers see every file or none, and a write that dies leaves only
    the hidden folder, removed by a later write of the same folder once it is stale. One
    rename for the lot, where a rename per file would mean a directory fsync per file.
    ``target`` must not exist yet.
    """
    if target.exists():
        raise FileExistsError(f"{target} already exists; a folder is written once")
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_temporaries(target.parent, target.name):
        shutil.rmtree(stale, ignore_errors=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}.tmp"
    temporary.mkdir()
    try:
        for name, data in files.items():
            if Path(name).name != name or name.startswith("."):
                raise ValueError(f"{name!r} is not a plain file name")
            (temporary / name).write_bytes(data)
        # fsync after writing them all: the kernel has flushed most of them by then.
        for name in files:
            _fsync(temporary / name)
        _fsync(temporary)
        commit(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return [target / name for name in files]
