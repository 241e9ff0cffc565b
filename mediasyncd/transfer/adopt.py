"""Adopting what is already in the library (moving from rsync): no transfer for a file whose copy is there.

A claimed file whose landing path already holds a regular file with the remote's size and mtime (within
`MTIME_WINDOW`) is a candidate. The remote's own SHA-256 (one command per batch, through the source) and
the library copy's (in a thread) are computed together; only when they agree does the Ledger record the
file landed and verified, with a `file_synced` event marked `"adopted": true`. Nothing is written before
both hashes agree, so a kill -9 at any point leaves the file 'seen', checked again on the next pass. A file
whose copy differs, or that either side cannot hash, goes to the transfer workers like any other; landing
then keeps both versions (it never overwrites).

`survey` runs the same checks for `sync --once --adopt --dry-run` and writes nothing.
"""

from __future__ import annotations

import asyncio
import os
import posixpath
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from enum import Enum, auto
from pathlib import Path
from typing import TypeVar

import structlog

from mediasyncd.config import RemoteConfig
from mediasyncd.digest import sha256_file
from mediasyncd.errors import UnsafePathError
from mediasyncd.paths import library_rel
from mediasyncd.sources import RemoteEntry, Source
from mediasyncd.state import FileRow, FileState, KnownFiles
from mediasyncd.transfer.index import still_pending
from mediasyncd.transfer.jobs import batches
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.ledger import Landed, Ledger
from mediasyncd.watchers.poll import PollWatcher

# A library copy's mtime may differ from the remote's by this much and still be a candidate: FAT stores
# mtimes in 2 s steps, SMB and SFTP v3 listings in whole seconds. The SHA-256 on both sides decides; the
# mtime only spares hashing copies that are plainly another version.
MTIME_WINDOW = 2.0
ADOPT_FILES = 256  # files per remote hash command
ADOPT_BYTES = 1 << 30  # bytes hashed per batch: the source's one shell channel is not held for long
T = TypeVar("T")


def same_stamp(size: int, mtime: float, local_size: int, local_mtime: float) -> bool:
    """The library copy has the remote's size and, within MTIME_WINDOW, its mtime. Pure."""
    return size == local_size and abs(mtime - local_mtime) <= MTIME_WINDOW


@dataclass(frozen=True)
class Copy:
    """A regular file at a landing path, as stat showed it when it became a candidate."""

    rel: str  # library-relative
    path: Path
    size: int
    mtime_ns: int
    ino: int


class Verdict(Enum):
    ADOPT = auto()
    MISMATCH = auto()  # same size and mtime, different bytes
    REMOTE_UNHASHED = auto()  # the remote cannot hash, or could not read this file
    LOCAL_UNREADABLE = auto()  # the copy could not be read, or changed while it was hashed


# ------------------------------------------------------------------------ blocking: run in a thread


LIST_AT = 8  # files looked for in one folder from which the folder is listed instead (find_copies)


def find_copy(library: Library, rel: str, size: int, mtime: float) -> Copy | None:
    """The regular file at `rel` if it has this size and mtime, and no symlink leads to it."""
    try:
        path = library.path(rel)
        st = os.lstat(path)
    except (OSError, UnsafePathError):
        return None
    if not stat.S_ISREG(st.st_mode) or not same_stamp(size, mtime, st.st_size, st.st_mtime):
        return None
    if os.path.realpath(path) != os.path.join(os.path.realpath(library.root), rel):
        return None  # a symlinked directory on the way: such a copy is not the library's
    return Copy(rel, path, st.st_size, st.st_mtime_ns, st.st_ino)


LOOK_SLICE = 8192  # claimed files looked for in the library at a time


def find_copies(library: Library, files: Sequence[tuple[str, int, float]]) -> list[Copy | None]:
    """`find_copy` of each (rel, size, mtime). A folder that LIST_AT or more of them are in is listed
    once, and only the names it holds are looked at one by one: the first pull of 20,000 files into an
    empty library made 20,000 failed lookups, each with its path checks (0.17 s before the first
    transfer), where 170 folder listings tell the same."""
    out: list[Copy | None] = [None] * len(files)
    folders: dict[str, list[int]] = {}
    for i, (rel, _, _) in enumerate(files):
        folders.setdefault(rel.rpartition("/")[0], []).append(i)
    for folder, indices in folders.items():
        names: set[str] | None = None
        if len(indices) >= LIST_AT:
            try:
                names = set(os.listdir(library.root / folder))
            except FileNotFoundError:
                continue  # no such folder: no copies in it
            except OSError:
                pass  # not a folder, not readable: one by one, as find_copy decides
        for i in indices:
            rel, size, mtime = files[i]
            if names is None or rel.rpartition("/")[2] in names:
                out[i] = find_copy(library, rel, size, mtime)
    return out


def hash_copies(copies: Sequence[Copy]) -> list[str | None]:
    """Each copy's SHA-256, or None when it cannot be read or changed while it was hashed."""
    out: list[str | None] = []
    for copy in copies:
        try:
            digest = sha256_file(copy.path)
            st = os.lstat(copy.path)
        except OSError:
            out.append(None)
            continue
        unchanged = (st.st_size, st.st_mtime_ns, st.st_ino) == (copy.size, copy.mtime_ns, copy.ino)
        out.append(digest if unchanged else None)
    return out


# ------------------------------------------------------------------------ the checks, for both callers


async def judge(
    source: Source, executor: Executor, items: Sequence[tuple[str, Copy]]
) -> list[tuple[Verdict, str | None]]:
    """(verdict, agreed SHA-256) per (remote path, library copy): both sides hash at once."""
    loop = asyncio.get_running_loop()
    remote, local = await asyncio.gather(
        source.sha256([path for path, _ in items]),
        loop.run_in_executor(executor, hash_copies, [copy for _, copy in items]),
    )
    out: list[tuple[Verdict, str | None]] = []
    for (path, _), mine in zip(items, local, strict=True):
        theirs = remote.get(path) if remote is not None else None
        if theirs is None:
            out.append((Verdict.REMOTE_UNHASHED, None))
        elif mine is None:
            out.append((Verdict.LOCAL_UNREADABLE, None))
        elif mine == theirs:
            out.append((Verdict.ADOPT, mine))
        else:
            out.append((Verdict.MISMATCH, None))
    return out


def in_batches(items: Sequence[T], copy_of: Callable[[T], Copy]) -> list[list[T]]:
    """Groups of at most ADOPT_FILES files and about ADOPT_BYTES bytes, in order."""
    groups = batches([("", copy_of(item).size) for item in items], ADOPT_FILES, ADOPT_BYTES)
    return [[items[i] for i in group] for group in groups]


# ------------------------------------------------------------------------ in a session


class Adopter:
    """One session's adoption stage: between the claim of a file and its transfer."""

    def __init__(
        self, remote: str, source: Source, *, library: Library, ledger: Ledger, executor: Executor
    ) -> None:
        self.remote = remote
        self.source = source
        self.library = library
        self.ledger = ledger
        self.executor = executor
        self.differs: set[int] = set()  # ids whose copy was found different: not hashed again
        self.log = structlog.get_logger("mediasyncd.adopt").bind(remote=remote)

    async def sort(self, rows: Sequence[FileRow]) -> tuple[list[FileRow], list[tuple[FileRow, Copy]]]:
        """Claimed rows to fetch, and the candidates for adoption (their copy is in the library)."""
        maybe = [r for r in rows if r.id not in self.differs]
        if not maybe or not self.source.caps.hashes:
            return list(rows), []

        def look() -> dict[int, Copy]:
            found: dict[int, Copy] = {}
            for start in range(0, len(maybe), LOOK_SLICE):  # a first pass's 100,000 paths not all at once
                part = maybe[start : start + LOOK_SLICE]
                wanted = [(library_rel(self.remote, r.rel), r.size, r.mtime) for r in part]
                found.update(
                    (r.id, c) for r, c in zip(part, find_copies(self.library, wanted), strict=True) if c
                )
            return found

        copies = await asyncio.to_thread(look)
        fetch = [r for r in rows if copies.get(r.id) is None]
        return fetch, [(r, c) for r in rows if (c := copies.get(r.id)) is not None]

    async def run(
        self, candidates: asyncio.Queue[tuple[FileRow, Copy]], fetch: Callable[[list[FileRow]], object]
    ) -> None:
        """Check candidates in batches; the Ledger records the adopted, `fetch` takes the rest."""
        while True:
            batch = [await candidates.get()]
            while not candidates.empty() and len(batch) < ADOPT_FILES:
                batch.append(candidates.get_nowait())
            try:
                for group in in_batches(batch, lambda item: item[1]):
                    await self._check(group, fetch)
            finally:
                for _ in batch:
                    candidates.task_done()

    async def _check(
        self, group: list[tuple[FileRow, Copy]], fetch: Callable[[list[FileRow]], object]
    ) -> None:
        verdicts = await judge(
            self.source, self.executor, [(posixpath.join(r.root, r.rel), c) for r, c in group]
        )
        adopted: list[Landed] = []
        rest: list[FileRow] = []
        for (row, copy), (verdict, sha256) in zip(group, verdicts, strict=True):
            if verdict is Verdict.ADOPT and sha256 is not None:
                adopted.append(Landed(row, sha256, copy.rel))
                continue
            rest.append(row)
            if verdict is Verdict.MISMATCH:
                self.differs.add(row.id)
                self.ledger.counts.mismatched += 1
                self.log.warning(
                    "not adopted: the library copy has the remote's size and mtime but other bytes; "
                    "fetching it (it lands beside the copy)",
                    path=row.rel,
                    local_path=copy.rel,
                )
            elif verdict is Verdict.LOCAL_UNREADABLE:
                self.log.warning("not adopted: the library copy could not be hashed; fetching it",
                                 path=row.rel, local_path=copy.rel)  # fmt: skip
        await self.ledger.adopted(adopted)
        if rest:
            fetch(rest)


# ------------------------------------------------------------------------ the dry run


@dataclass
class Survey:
    """What one `sync --once` pass would do with a remote's complete files, adoption first."""

    adopt: int = 0
    adopt_bytes: int = 0
    fetch: int = 0  # mismatched files included
    fetch_bytes: int = 0
    mismatched: list[str] = field(default_factory=list)  # library paths
    settling: int = 0
    remote_hashes: bool = True


def _transferring(row: FileRow | None) -> bool:
    return row is not None and row.state == FileState.TRANSFERRING


async def survey(
    source: Source,
    remote: RemoteConfig,
    index: KnownFiles,
    library: Library,
    executor: Executor,
) -> Survey:
    """List the remote as `sync --once` does and sort what it would take: adopt or fetch. Writes nothing."""

    def taken_by_a_pass(entries: Sequence[RemoteEntry]) -> list[RemoteEntry]:
        waiting = set(still_pending(index, entries))  # and a transfer a crash cut short is taken again
        return [e for e in entries if e in waiting or _transferring(index.get(e.key))]

    sighting = await PollWatcher(source, remote, taken_by_a_pass, once=True).look()
    taken = [e for e in sighting.entries if e.key in sighting.ready]
    out = Survey(settling=sighting.settling, remote_hashes=source.caps.hashes)

    def look() -> list[Copy | None]:
        if not out.remote_hashes:
            return [None] * len(taken)
        return [find_copy(library, library_rel(remote.name, e.rel), e.size, e.mtime) for e in taken]

    copies = await asyncio.to_thread(look)
    candidates = [(e.path, c) for e, c in zip(taken, copies, strict=True) if c is not None]
    verdicts: dict[str, Verdict] = {}
    for group in in_batches(candidates, lambda item: item[1]):
        for (path, _), (verdict, _) in zip(group, await judge(source, executor, group), strict=True):
            verdicts[path] = verdict
    for e, copy in zip(taken, copies, strict=True):
        if verdicts.get(e.path) is Verdict.ADOPT:
            out.adopt += 1
            out.adopt_bytes += e.size
            continue
        out.fetch += 1
        out.fetch_bytes += e.size
        if copy is not None and verdicts.get(e.path) is Verdict.MISMATCH:
            out.mismatched.append(copy.rel)
    return out
