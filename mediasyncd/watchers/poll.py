"""Poll mode: what changed since the last listing, and which files have settled. Pure logic.

`diff` compares a listing with the state DB's current rows so that a pass writes only what changed;
`SettleTracker` decides when a file is complete: its mtime is at least `settle` old by the remote's clock,
or its size and mtime held still across passes for `settle` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field

from mediasyncd.state import FileRow, NewFile
from mediasyncd.watchers.listing import RemoteEntry

Key = tuple[str, str]
UNLANDED = frozenset({"seen", "transferring", "failed"})


def same_version(size_a: int, mtime_a: float, size_b: int, mtime_b: float) -> bool:
    """Equal size and mtime; an mtime seen with whole seconds only (SFTP v3) matches its fraction."""
    if size_a != size_b:
        return False
    if abs(mtime_a - mtime_b) < 1e-6:
        return True
    whole = mtime_a.is_integer() or mtime_b.is_integer()
    return whole and int(mtime_a) == int(mtime_b)


@dataclass
class Diff:
    new: list[NewFile] = field(default_factory=list)
    retire: list[int] = field(default_factory=list)  # landed rows replaced by a new version
    forget: list[int] = field(default_factory=list)  # unlanded rows that vanished or changed

    @property
    def empty(self) -> bool:
        return not (self.new or self.retire or self.forget)


def diff(known: Mapping[Key, FileRow], entries: Iterable[RemoteEntry], busy: Set[int] = frozenset()) -> Diff:
    """What to write to the DB for this listing; nothing for files that did not change. Rows in `busy`
    (being transferred) are left alone: their transfer notices a change and the next pass handles it."""
    d = Diff()
    listed: set[Key] = set()
    for e in entries:
        listed.add(e.key)
        row = known.get(e.key)
        if row is None:
            d.new.append(NewFile(e.root, e.rel, e.size, e.mtime))
        elif row.id not in busy and not same_version(row.size, row.mtime, e.size, e.mtime):
            (d.forget if row.state in UNLANDED else d.retire).append(row.id)
            d.new.append(NewFile(e.root, e.rel, e.size, e.mtime))
    for key, row in known.items():
        if key not in listed and row.state in ("seen", "failed") and row.id not in busy:
            d.forget.append(row.id)
    return d


@dataclass
class SettleTracker:
    """Remembers, per file, since when its size and mtime have been unchanged."""

    settle: float
    _since: dict[Key, tuple[int, float, float]] = field(default_factory=dict)
    next_in: float | None = None  # seconds until the next unsettled file could settle

    def observe(self, entries: Iterable[RemoteEntry], now: float, remote_now: float | None) -> set[Key]:
        """Record a listing made at local time `now`; return the keys of settled files."""
        ready: set[Key] = set()
        current: dict[Key, tuple[int, float, float]] = {}
        waits: list[float] = []
        for e in entries:
            prev = self._since.get(e.key)
            since = prev[2] if prev and same_version(prev[0], prev[1], e.size, e.mtime) else now
            current[e.key] = (e.size, e.mtime, since)
            if now - since >= self.settle or is_old(e, remote_now, self.settle):
                ready.add(e.key)
                continue
            wait = self.settle - (now - since)
            if remote_now is not None:
                wait = min(wait, self.settle - (remote_now - e.mtime))
            waits.append(max(wait, 0.0))
        self._since = current
        self.next_in = min(waits) if waits else None
        return ready

    @property
    def watching(self) -> int:
        return len(self._since)


def is_old(entry: RemoteEntry, remote_now: float | None, settle: float) -> bool:
    """True when the file's mtime is at least `settle` old by the remote's clock."""
    return remote_now is not None and remote_now - entry.mtime >= settle
