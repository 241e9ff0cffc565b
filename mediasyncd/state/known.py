"""One remote's current files in memory, compactly: the diff base a listing is compared with.

A remote that is never purged, or a library adopted whole, holds hundreds of thousands of current files,
and nearly all of them are landed. A `FileRow` per file cost ~450 bytes (a million files: 500 MB). Here a
landed file costs ~40 bytes: its key (root, rel) as two 64-bit keyed hashes in two sorted unsigned
columns, and its id, size and mtime in three more (`array`), found by bisection. Files not landed
(seen, transferring, failed: few at any time) are kept whole in a dict, and so are files landed since
the columns were last rebuilt, until there are enough of them to merge (slices of the columns, not a
Python step per file).

The two hashes are Python's own string hash (SipHash, with a key drawn at random by each process) of
two different strings made from the key: the columns are built by each process from the state DB and
never leave it, so the hash need not be the same in the next one, and one the remote cannot predict is
one its file names cannot be chosen to collide with. Two keys with both hashes equal would be taken for
one file: at 128 bits, as likely as two renders with one SHA-256, the bet the verification makes anyway.
Against the BLAKE2b digest used before, a nothing-new pass over 20,000 files compares its listing in
about half the time (docs/benchmarks.md, issue 21).
"""

from __future__ import annotations

import sqlite3
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress
from typing import TypeVar

from mediasyncd.state.lifecycle import UNLANDED, WAITING, FileState, sql_set
from mediasyncd.state.rows import ROW_COLUMNS, FileRow, to_row

Key = tuple[str, str]
Stamp = tuple[int, FileState, int, float]  # id, state, size, mtime
Entry = TypeVar("Entry", bound=tuple[str, str, int, float])  # a listed file: root, rel, size, mtime
Fresh = tuple[int, int, int, int, float]  # a landed file not yet in the columns: hi, lo, id, size, mtime
_GONE = 0  # the id of a column slot whose file left (SQLite's row ids start at 1)
_LOW = (1 << 64) - 1
_MERGE_AT = 64  # landed files kept whole before a merge, at least (else a 64th of the columns)


def key_hashes(root: str, rel: str) -> tuple[int, int]:
    """The two unsigned 64-bit hashes a landed file is known by in this process."""
    return hash((root, rel)) & _LOW, hash((root, rel + "\0")) & _LOW


def key_digest(root: str, rel: str) -> bytes:
    """`key_hashes` as 16 bytes that sort as the pair does (an SQL function: the columns load sorted)."""
    hi, lo = key_hashes(root, rel)
    return ((hi << 64) | lo).to_bytes(16, "big")


def _halves(digest: bytes) -> tuple[int, int]:
    whole = int.from_bytes(digest, "big")
    return whole >> 64, whole & _LOW


def is_landed(state: FileState) -> bool:
    return state in (FileState.LANDED, FileState.PROCESSED)


class KnownFiles:
    """Every current file of one remote by (root, rel): `get`, `set`, `pop` and the rows not landed."""

    def __init__(self, remote: str) -> None:
        self.remote = remote
        self._open: dict[Key, FileRow] = {}  # not landed: whole rows
        self._fresh: dict[Key, Fresh] = {}  # landed since the columns were built
        self._hi, self._lo = array("Q"), array("Q")  # the digest, sorted
        self._id, self._size, self._mtime = array("q"), array("q"), array("d")
        self._gone = 0  # column slots whose file left

    @classmethod
    def build(
        cls, remote: str, landed: Iterable[tuple[bytes, int, int, float]], rows: Iterable[FileRow]
    ) -> KnownFiles:
        """From (digest, id, size, mtime) of the landed files in digest order, and the other rows."""
        known = cls(remote)
        last = b""
        for digest, file_id, size, mtime in landed:
            if digest < last:
                raise ValueError("landed files must come in ascending digest order")
            if digest == last:  # two current rows of one path: the later (higher id) stands
                known._id[-1], known._size[-1], known._mtime[-1] = file_id, size, mtime
                continue
            last = digest
            known._append(*_halves(digest), file_id, size, mtime)
        for row in rows:
            known.set(row)
        return known

    # ------------------------------------------------------------------------------- reading

    def get(self, key: Key) -> FileRow | None:
        row = self._open.get(key)
        if row is not None:
            return row
        root, rel = key
        fresh = self._fresh.get(key)
        if fresh is not None:
            return FileRow(fresh[2], self.remote, root, rel, fresh[3], fresh[4], FileState.LANDED)
        at = self._find(*key_hashes(root, rel))
        if at < 0 or self._id[at] == _GONE:
            return None
        return FileRow(
            self._id[at], self.remote, root, rel, self._size[at], self._mtime[at], FileState.LANDED
        )

    def stamp(self, key: Key) -> Stamp | None:
        """What a listing is compared with: (id, state, size, mtime), without building a row."""
        return next(self.stamps((key,)))

    def stamps(self, keys: Iterable[Key]) -> Iterator[Stamp | None]:
        """`stamp` of each key, in order (consume it before the next change): a whole listing's lookups
        without a method call per file. Every poll compares every listed file: 20,000 took 39 ms through
        `stamp` one by one, 29 ms here."""
        whole = self._open or self._fresh
        open_get, fresh_get = self._open.get, self._fresh.get
        his, los, ids, sizes, mtimes = self._hi, self._lo, self._id, self._size, self._mtime
        count = len(his)
        for key in keys:
            if whole:
                row = open_get(key)
                if row is not None:
                    yield row.id, row.state, row.size, row.mtime
                    continue
                fresh = fresh_get(key)
                if fresh is not None:
                    yield fresh[2], FileState.LANDED, fresh[3], fresh[4]
                    continue
            if not count:
                yield None
                continue
            root, rel = key
            hi, lo = hash(key) & _LOW, hash((root, rel + "\0")) & _LOW  # key_hashes, inline
            at = bisect_left(his, hi)
            while at < count and his[at] == hi and los[at] < lo:
                at += 1
            if at < count and his[at] == hi and los[at] == lo and ids[at] != _GONE:
                yield ids[at], FileState.LANDED, sizes[at], mtimes[at]
            else:
                yield None

    def not_landed(
        self, entries: Sequence[Entry], same: Callable[[int, float, int, float], bool]
    ) -> list[Entry]:
        """The listed `entries` (root, rel, size, mtime) whose version has not landed, in order: files
        not known, files waiting for a transfer (WAITING) and files known in another version (`same`:
        whether (size, mtime) and (size, mtime) are one version). One loop, no row or stamp made per
        file: what a nothing-new pass spends on each listed file (20,000: 32 -> 18 ms)."""
        out: list[Entry] = []
        append = out.append
        whole = self._open or self._fresh
        open_get, fresh_get = self._open.get, self._fresh.get
        his, los, ids, sizes, mtimes = self._hi, self._lo, self._id, self._size, self._mtime
        count = len(his)
        for entry in entries:
            root, rel, size, mtime = entry
            if whole:
                row = open_get((root, rel))
                if row is not None:
                    if row.state in WAITING or not same(row.size, row.mtime, size, mtime):
                        append(entry)
                    continue
                fresh = fresh_get((root, rel))
                if fresh is not None:
                    if not (
                        (fresh[3] == size and fresh[4] == mtime) or same(fresh[3], fresh[4], size, mtime)
                    ):
                        append(entry)
                    continue
            if count:
                hi, lo = hash((root, rel)) & _LOW, hash((root, rel + "\0")) & _LOW  # key_hashes, inline
                at = bisect_left(his, hi)
                while at < count and his[at] == hi and los[at] < lo:
                    at += 1
                if at < count and his[at] == hi and los[at] == lo and ids[at] != _GONE:
                    known_size, known_mtime = sizes[at], mtimes[at]
                    if (known_size == size and known_mtime == mtime) or same(
                        known_size, known_mtime, size, mtime
                    ):
                        continue
            append(entry)
        return out

    def __getitem__(self, key: Key) -> FileRow:
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return row

    def __contains__(self, key: Key) -> bool:
        return self.get(key) is not None

    def __len__(self) -> int:
        return len(self._open) + len(self._fresh) + len(self._id) - self._gone

    def unlanded(self) -> Iterator[FileRow]:
        """The rows not landed (seen, transferring, failed)."""
        return iter(list(self._open.values()))

    # ------------------------------------------------------------------------------- changes

    def set(self, row: FileRow) -> None:
        """`row` is what its key holds now."""
        key = row.key
        if not is_landed(row.state):
            self.pop(key)
            self._open[key] = row
            return
        self._open.pop(key, None)
        hi, lo = key_hashes(row.root, row.rel)
        at = self._find(hi, lo)
        if at >= 0:  # known by the columns (or left them): this row takes its slot
            if self._id[at] == _GONE:
                self._gone -= 1
            self._id[at], self._size[at], self._mtime[at] = row.id, row.size, row.mtime
            return
        self._fresh[key] = (hi, lo, row.id, row.size, row.mtime)
        if len(self._fresh) >= max(_MERGE_AT, (len(self._id) - self._gone) >> 6):
            self._merge()

    def __setitem__(self, key: Key, row: FileRow) -> None:
        if key != row.key:
            raise KeyError(key)
        self.set(row)

    def pop(self, key: Key) -> None:
        """The file at `key` is no longer known."""
        if self._open.pop(key, None) is not None or self._fresh.pop(key, None) is not None:
            return
        at = self._find(*key_hashes(*key))
        if at >= 0 and self._id[at] != _GONE:
            self._id[at] = _GONE
            self._gone += 1

    def drop_ids(self, ids: Iterable[int]) -> None:
        """Forget the rows not landed with these ids (vanished or changed before they landed)."""
        gone = set(ids)
        self._open = {k: r for k, r in self._open.items() if r.id not in gone}

    # ------------------------------------------------------------------------------- the columns

    def _find(self, hi: int, lo: int) -> int:
        """The column slot of the digest (hi, lo) (even one whose file left), or -1."""
        if not self._hi:
            return -1
        at = _slot(self._hi, self._lo, hi, lo)
        if at < len(self._hi) and self._hi[at] == hi and self._lo[at] == lo:
            return at
        return -1

    def _append(self, hi: int, lo: int, file_id: int, size: int, mtime: float) -> None:
        self._hi.append(hi)
        self._lo.append(lo)
        self._id.append(file_id)
        self._size.append(size)
        self._mtime.append(mtime)

    def _merge(self) -> None:
        """Move the fresh landed rows into the columns (dropping the slots whose file left): the columns
        between two new rows are copied as slices."""
        old: list[array[int] | array[float]] = [self._hi, self._lo, self._id, self._size, self._mtime]
        if self._gone:
            keep = [i != _GONE for i in self._id]
            old = [array(c.typecode, compress(c, keep)) for c in old]
        adds = sorted(self._fresh.values())
        new: list[array[int] | array[float]] = [array(c.typecode) for c in old]
        done = 0
        for add in adds:
            at = _slot(old[0], old[1], add[0], add[1])  # type: ignore[arg-type]
            for into, column, value in zip(new, old, add, strict=True):
                into.extend(column[done:at])  # type: ignore[arg-type]
                into.append(value)  # type: ignore[arg-type]
            done = at
        for into, column in zip(new, old, strict=True):
            into.extend(column[done:])  # type: ignore[arg-type]
        self._hi, self._lo, self._id, self._size, self._mtime = new  # type: ignore[assignment]
        self._fresh.clear()
        self._gone = 0


def _slot(his: array[int], los: array[int], hi: int, lo: int) -> int:
    """Where the digest (hi, lo) is, or would go, in sorted columns."""
    at = bisect_left(his, hi)
    while at < len(his) and his[at] == hi and los[at] < lo:
        at += 1
    return at


def select_known_files(conn: sqlite3.Connection, remote: str) -> KnownFiles:
    """`remote`'s current files from the state DB, on any connection (a read-only one too): the landed
    ones streamed in digest order (SQLite sorts them, spilling to its temp files, not to memory)."""
    conn.create_function("mediasyncd_key", 2, key_digest, deterministic=True)
    landed = conn.execute(
        "SELECT mediasyncd_key(root, rel) AS k, id, size, mtime FROM files "
        "WHERE remote = ? AND current = 1 AND state IN (?, ?) ORDER BY k, id",
        (remote, FileState.LANDED, FileState.PROCESSED),
    )
    others = conn.execute(
        f"SELECT {ROW_COLUMNS} FROM files WHERE remote = ? AND current = 1 AND state IN {sql_set(UNLANDED)}",
        (remote,),
    )
    return KnownFiles.build(remote, landed, map(to_row, others))
