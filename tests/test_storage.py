"""Atomic writes of one file and of a whole folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from inboxgraph import storage
from inboxgraph.storage import write_folder_atomic


def test_a_folder_appears_with_every_file_and_no_leftovers(tmp_path: Path) -> None:
    stale = tmp_path / ".export-1.0123.tmp"
    stale.mkdir()
    (stale / "half-written.json").write_bytes(b"{")
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
