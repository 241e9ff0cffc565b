"""One remote's known files against a listing: what to write to the DB. Pure.

`diff` compares a listing with the state DB's current rows (kept in memory as `KnownFiles`,
state/known.py) so that a pass writes only what changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field

from mediasyncd.sources import RemoteEntry, same_version
from mediasyncd.state import UNLANDED, WAITING, KnownFiles, NewFile


@dataclass
class Diff:
    new: list[NewFile] = field(default_factory=list)
    retire: list[int] = field(default_factory=list)  # landed rows replaced by a new version
    forget: list[int] = field(default_factory=list)  # unlanded rows that vanished or changed

    @property
    def empty(self) -> bool:
        return not (self.new or self.retire or self.forget)


def still_pending(known: KnownFiles, entries: Sequence[RemoteEntry]) -> list[RemoteEntry]:
    """The entries whose version has not landed, in order (what a watcher settles): a whole listing is
    looked up at once (`KnownFiles.not_landed`)."""
    return known.not_landed(entries, same_version)


def diff(
    known: KnownFiles,
    entries: Iterable[RemoteEntry],
    busy: Set[int] = frozenset(),
    *,
    full: bool = True,
    listing: Iterable[RemoteEntry] | None = None,
) -> Diff:
    """What to write to the DB for this listing; nothing for files that did not change. Rows in `busy`
    (being transferred) are left alone: their transfer notices a change and the next pass handles it.
    Only a `full` listing says that unlisted files vanished. `entries` may be only the part of the
    listing that `still_pending` found not landed in this version (a pass then looks each file up once);
    `listing` is the whole of it, which says what is still there."""
    d = Diff()
    entries = entries if isinstance(entries, Sequence) else list(entries)
    for e, stamp in zip(entries, known.stamps([(e.root, e.rel) for e in entries]), strict=True):
        if stamp is None:
            d.new.append(NewFile(e.root, e.rel, e.size, e.mtime))
            continue
        file_id, state, size, mtime = stamp
        if file_id not in busy and not same_version(size, mtime, e.size, e.mtime):
            (d.forget if state in UNLANDED else d.retire).append(file_id)
            d.new.append(NewFile(e.root, e.rel, e.size, e.mtime))
    if full:
        waiting = [r for r in known.unlanded() if r.state in WAITING and r.id not in busy]
        if waiting:  # rarely: a pass with nothing new has no unlanded rows and builds no set
            listed = {e.key for e in (entries if listing is None else listing)}
            d.forget.extend(r.id for r in waiting if r.key not in listed)
    return d
