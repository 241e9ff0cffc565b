"""The `Watcher` protocol: what the transfer side consumes, one `Sighting` at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from mediasyncd.sources import Key, Listing, RemoteEntry

# "Which of these files are still to be taken in this version?", over a whole listing at once.
Pending = Callable[[Sequence[RemoteEntry]], list[RemoteEntry]]


@dataclass(frozen=True)
class Sighting:
    """What a watcher learned in one step: the files it saw, and which of them are complete.

    `listing` holds the files that pass the remote's include/exclude globs; with `full`, it is the whole
    tree, so files missing from it have vanished. `ready` are the keys of complete files (settled in a
    poll, closed after write for the agent); `settling` counts the pending files not complete yet;
    `rejected` counts names rejected for the first time (each is logged once). `waiting` are the entries
    the watcher found not landed in this version (a poll looks every file up once, and the ledger compares
    only these); `ready` is a part of them.
    """

    listing: Listing
    ready: frozenset[Key]
    settling: int = 0
    full: bool = True
    rejected: int = 0
    seconds: float = 0.0
    sync_id: str = ""
    entries: list[RemoteEntry] = field(default_factory=list)
    waiting: list[RemoteEntry] | None = None  # the entries not landed in this version; None: unknown


class Watcher(Protocol):
    mode: str  # what /status shows as the watch mode: "poll" or "agent" (later "watchfiles"); a
    # watcher may also have `reason`: why not the agent (/status `watch_reason`)

    def sightings(self) -> AsyncIterator[Sighting]:
        """Sightings until cancelled (or, for a one-pass watcher, after its one pass)."""

    def wake(self) -> None:
        """Look again now instead of at the next interval."""
