"""The library on disk: partial files, safe directory creation, no-clobber atomic landing.

Everything here is blocking file-system work; callers run it in a thread, or, where the library's
filesystem takes it at once, the plans and renames on the event loop (sources/write_place.py; never the
flushes). Nothing is ever written outside the library: each landing path is checked lexically
(paths.check_rel) and, after the directories exist, by resolving them (a symlink inside the library
that points elsewhere is refused).
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mediasyncd.digest import sha256_file
from mediasyncd.errors import LibraryUnavailable, UnsafePathError
from mediasyncd.libc import rename_noreplace, syncfs
from mediasyncd.paths import INTERNAL_DIR, check_rel, conflict_name, partial_name


@dataclass(frozen=True)
class Plan:
    """Where a verified file goes: `rel` in the library; `present` when identical bytes are already there."""

    rel: str
    present: bool


@dataclass(frozen=True)
class Arrival:
    """A verified partial and where it wants to land."""

    partial: Path
    wanted: str
    sha256: str
    mtime: float


@dataclass
class Renames:
    """What the renames of one batch did: each arrival's error or None, in order; the folders whose
    entries changed; the folders made and checked (once each for the batch, not once per file)."""

    results: list[Exception | None] = field(default_factory=list)
    changed: set[Path] = field(default_factory=set)
    checked: set[Path] = field(default_factory=set)


class Library:
    def __init__(self, root: Path, file_mode: int = 0o644, dir_mode: int = 0o755) -> None:
        self.root = root
        self.file_mode = file_mode
        self.dir_mode = dir_mode

    def check_available(self, landed_before: int = 0) -> None:
        """The library must exist and be writable; the daemon never creates it (an unmounted NAS).
        Once files have landed (`landed_before`), it must also hold the `.mediasyncd` folder made at
        the first start: an empty mount point where a NAS is not (yet) mounted has none, and writing
        there would fill the root disk."""
        problem = self.problem(landed_before)
        if problem is not None:
            raise LibraryUnavailable(problem)
        (self.root / INTERNAL_DIR).mkdir(mode=0o700, exist_ok=True)

    def problem(self, landed_before: int = 0) -> str | None:
        """Why the library cannot be used now, or None (see check_available)."""
        if not self.root.is_dir():
            return f"library {self.root} does not exist (is the NAS mounted?)"
        if not os.access(self.root, os.W_OK | os.X_OK):
            return f"library {self.root} is not writable"
        if landed_before and not (self.root / INTERNAL_DIR).is_dir():
            return (
                f"library {self.root} has no {INTERNAL_DIR} folder, though {landed_before} file(s) landed "
                f"there before: is the NAS mounted? (if this library is new on purpose: "
                f"mkdir {self.root / INTERNAL_DIR})"
            )
        return None

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def partial_path(self, remote: str, file_id: int) -> Path:
        return self.root / partial_name(remote, file_id)

    def path(self, rel: str) -> Path:
        check_rel(rel)
        return self.root / rel

    def plan(self, rel: str, sha256: str, claimed: dict[str, str] | None = None) -> Plan:
        """Choose the landing path for content `sha256` wanted at `rel` without overwriting anything.
        `claimed` maps paths already promised to other files of the same batch to their hashes."""
        claimed = claimed if claimed is not None else {}
        candidates = itertools.chain([rel], (conflict_name(rel, sha256, n) for n in (8, 16, 64)))
        for candidate in candidates:  # the conflict names only when `rel` is taken
            if candidate in claimed:
                if claimed[candidate] == sha256:
                    return Plan(candidate, present=True)
                continue
            target = self.path(candidate)
            if not os.path.lexists(target):
                return Plan(candidate, present=False)
            if target.is_file() and not target.is_symlink() and sha256_file(target) == sha256:
                return Plan(candidate, present=True)
        raise UnsafePathError(f"{rel}: every candidate name is taken by different content")

    def plan_batch(self, arrivals: list[Arrival]) -> list[Plan | Exception]:
        claimed: dict[str, str] = {}
        plans: list[Plan | Exception] = []
        for a in arrivals:
            try:
                plan = self.plan(a.wanted, a.sha256, claimed)
            except (UnsafePathError, OSError) as exc:
                plans.append(exc)
                continue
            claimed[plan.rel] = a.sha256
            plans.append(plan)
        return plans

    def land_batch(self, arrivals: list[Arrival], plans: list[Plan | Exception]) -> list[Exception | None]:
        """Land (or, when identical bytes are already there, discard) each planned arrival: the three
        steps below in one call."""
        self.flush_before(plans)
        batch = Renames()
        self.rename(arrivals, plans, batch)
        self.flush_after(batch)
        return batch.results

    def flush_before(self, plans: list[Plan | Exception]) -> None:
        """Every partial's bytes durable before any rename: one `syncfs` for a batch, not one per file."""
        if any(isinstance(plan, Plan) and not plan.present for plan in plans):
            sync_filesystem(self.root)

    def rename(self, arrivals: list[Arrival], plans: list[Plan | Exception], batch: Renames) -> None:
        """Rename (or discard) each planned arrival of the batch, or of a slice of it, into `batch`."""
        for a, plan in zip(arrivals, plans, strict=True):
            if isinstance(plan, Exception):
                self.discard(a.partial)
                batch.results.append(plan)
                continue
            try:
                if plan.present:
                    self.discard(a.partial)
                else:
                    batch.changed.add(
                        self.land(a.partial, plan.rel, a.mtime, sync_dir=False, checked=batch.checked)
                    )
                batch.results.append(None)
            except (UnsafePathError, OSError) as exc:
                batch.results.append(exc)

    def flush_after(self, batch: Renames) -> None:
        """Each folder whose entries changed, fsynced once, before the state DB records the batch."""
        for directory in batch.changed:
            _fsync_dir(directory)

    def land(
        self,
        partial: Path,
        rel: str,
        mtime: float,
        *,
        sync_dir: bool = True,
        checked: set[Path] | None = None,
    ) -> Path:
        """Atomically move a verified partial to `rel` with the remote mtime and the configured modes;
        returns the directory whose entry changed (fsynced here unless the caller batches that).
        `checked`: folders this batch already made and checked (see _make_parents); updated."""
        target = self.path(rel)
        if checked is None or target.parent not in checked:
            self._make_parents(target)
            if checked is not None:
                checked.add(target.parent)
        os.chmod(partial, self.file_mode)
        os.utime(partial, (mtime, mtime))
        try:
            rename_noreplace(partial, target)  # refuses an occupied target in one step (libc.py)
        except FileExistsError:
            raise UnsafePathError(f"{rel}: appeared while landing; not overwriting") from None
        if sync_dir:
            _fsync_dir(target.parent)
        return target.parent

    def discard(self, partial: Path) -> None:
        partial.unlink(missing_ok=True)

    def _make_parents(self, target: Path) -> None:
        root_real = os.path.realpath(self.root)
        current = self.root
        for part in target.relative_to(self.root).parts[:-1]:
            current = current / part
            if current.is_symlink():
                raise UnsafePathError(f"{current} is a symlink; refusing to land through it")
            if not current.exists():
                try:
                    current.mkdir(mode=self.dir_mode)
                    os.chmod(current, self.dir_mode)
                except FileExistsError:
                    pass
        parent_real = os.path.realpath(target.parent)
        if os.path.commonpath([root_real, parent_real]) != root_real:
            raise UnsafePathError(f"{target.parent} resolves outside the library")


def sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding `path` (Linux syncfs; elsewhere a global sync)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if not syncfs(fd):
            os.sync()
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
