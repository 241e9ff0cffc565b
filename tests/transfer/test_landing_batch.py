"""Landing a batch: each folder is made and checked once per batch, and every landed file's folder entry
is made durable (fsync of the folder) before the batch is handed back to be recorded as landed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mediasyncd.errors import UnsafePathError
from mediasyncd.transfer import landing
from mediasyncd.transfer.landing import Arrival, Library, Plan


class _CountingLibrary(Library):
    """The real Library, counting the folder checks it makes."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.parent_checks: list[Path] = []

    def _make_parents(self, target: Path) -> None:
        self.parent_checks.append(target.parent)
        super()._make_parents(target)


def _arrivals(lib: Library, rels: list[str]) -> list[Arrival]:
    out = []
    for i, rel in enumerate(rels):
        partial = lib.partial_path("r", i)
        partial.parent.mkdir(parents=True, exist_ok=True)
        data = f"file {i}".encode()
        partial.write_bytes(data)
        out.append(Arrival(partial, rel, hashlib.sha256(data).hexdigest(), 1_700_000_000.0))
    return out


def test_each_folder_is_checked_once_and_fsynced_before_the_batch_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six files in three folders: three folder checks, three folder fsyncs, all before land_batch
    returns (the caller records the batch as landed only after that)."""
    synced: list[Path] = []
    real_fsync_dir = landing._fsync_dir

    def spy(path: Path) -> None:
        real_fsync_dir(path)
        synced.append(path)

    monkeypatch.setattr(landing, "_fsync_dir", spy)
    lib = _CountingLibrary(tmp_path / "lib")
    lib.root.mkdir()
    rels = ["r/a/1.png", "r/a/2.png", "r/b/3.png", "r/a/4.png", "r/c/d/5.png", "r/b/6.png"]
    arrivals = _arrivals(lib, rels)
    plans = lib.plan_batch(arrivals)
    assert all(isinstance(p, Plan) and not p.present for p in plans)
    assert lib.land_batch(arrivals, plans) == [None] * len(rels)
    folders = {lib.root / "r/a", lib.root / "r/b", lib.root / "r/c/d"}
    assert sorted(synced) == sorted(folders)
    assert sorted(lib.parent_checks) == sorted(folders)
    for rel in rels:
        assert (lib.root / rel).is_file()


def test_a_symlinked_folder_is_refused_even_after_an_earlier_batch_checked_it(tmp_path: Path) -> None:
    """The folder check is remembered for one batch only: a folder swapped for a symlink between
    batches is refused."""
    lib = Library(tmp_path / "lib")
    lib.root.mkdir()
    first = _arrivals(lib, ["r/a/1.png"])
    assert lib.land_batch(first, lib.plan_batch(first)) == [None]
    outside = tmp_path / "outside"
    outside.mkdir()
    os.rename(lib.root / "r/a", tmp_path / "moved")
    os.symlink(outside, lib.root / "r/a")
    second = _arrivals(lib, ["r/a/2.png"])
    results = lib.land_batch(second, lib.plan_batch(second))
    assert isinstance(results[0], UnsafePathError)
    assert not (outside / "2.png").exists()
