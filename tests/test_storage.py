"""Atomic writes of one file and of a whole folder."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inboxgraph import storage
from inboxgraph.storage import STALE_AFTER_SECONDS, write_atomic, write_folder_atomic


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_folder_appears_with_every_file_and_no_leftovers(tmp_path: Path) -> None:
    stale = tmp_path / ".export-1.0123.tmp"
    stale.mkdir()
    (stale / "half-written.json").write_bytes(b"{")
    _age(stale, STALE_AFTER_SECONDS + 60)
    files = {f"s-batch-{n:05d}.json": f'{{"n": {n}}}'.encode() for n in range(1, 301)}
    paths = write_folder_atomic(tmp_path / "export-1", files)
    assert paths == [tmp_path / "export-1" / name for name in files]
    assert {p.name: p.read_bytes() for p in (tmp_path / "export-1").iterdir()} == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export-1"]


def test_a_folder_write_that_dies_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def dies(temporary: Path, target: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(storage, "commit", dies)
    with pytest.raises(OSError, match="disk full"):
        write_folder_atomic(tmp_path / "export-2", {"a.csv": b"x\n"})
    assert list(tmp_path.iterdir()) == []


def test_a_folder_is_written_once_and_names_stay_inside_it(tmp_path: Path) -> None:
    write_folder_atomic(tmp_path / "export-3", {"a.csv": b"1\n"})
    with pytest.raises(FileExistsError):
        write_folder_atomic(tmp_path / "export-3", {"a.csv": b"2\n"})
    assert (tmp_path / "export-3" / "a.csv").read_bytes() == b"1\n"
    for name in ("../escape.csv", ".hidden", "sub/a.csv"):
        with pytest.raises(ValueError, match="not a plain file name"):
            write_folder_atomic(tmp_path / "export-4", {name: b""})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export-3"]


def test_a_write_removes_a_dead_writes_leftover_but_not_a_live_ones(tmp_path: Path) -> None:
    target = tmp_path / "part.parquet"
    dead = tmp_path / ".part.parquet.dead.tmp"
    live = tmp_path / ".part.parquet.live.tmp"
    for leftover in (dead, live):
        leftover.write_bytes(b"half")
    _age(dead, STALE_AFTER_SECONDS + 60)
    write_atomic(target, lambda temporary: temporary.write_bytes(b"whole"))
    assert target.read_bytes() == b"whole"
    assert not dead.exists()
    assert live.read_bytes() == b"half", "another process's write in progress was removed"


WRITER = """
import sys, time
from pathlib import Path
from inboxgraph.storage import write_atomic

target, start = Path(sys.argv[1]), float(sys.argv[2])
for n in range(200):
    while time.time() < start + n * 0.01:
        pass
    write_atomic(target, lambda t: t.write_bytes(sys.argv[3].encode() * 65536))
"""


def test_two_processes_writing_the_same_file_at_once_both_succeed(tmp_path: Path) -> None:
    """Stream workers starting together each create the stream table's first file."""
    target = tmp_path / "table" / "_schema.parquet"
    start = time.time() + 2
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(target), str(start), name],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    errors = [writer.communicate(timeout=120)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], errors
    assert target.read_bytes() in (b"a" * 65536, b"b" * 65536)
    assert [p.name for p in target.parent.iterdir()] == [target.name]
