"""Poll mode: list the source's roots on an interval and tell which files have settled.

`SettleTracker` (pure) decides when a file is complete: its mtime is at least `settle` old by the
remote's clock, or its size and mtime held still across passes for `settle` seconds. `PollWatcher` lists,
filters, settles and hands each pass over as a `Sighting`; with `once`, it makes one pass and ends.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import structlog

from mediasyncd.backoff import sleep_or_wake
from mediasyncd.config import RemoteConfig
from mediasyncd.sources import Key, Rejected, RemoteEntry, Source, same_version
from mediasyncd.watchers.base import Pending, Sighting


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
            key = e.key  # one tuple for both maps: a first pass sees tens of thousands
            prev = self._since.get(key)
            since = prev[2] if prev and same_version(prev[0], prev[1], e.size, e.mtime) else now
            current[key] = (e.size, e.mtime, since)
            if now - since >= self.settle or is_old(e, remote_now, self.settle):
                ready.add(key)
                continue
            wait = self.settle - (now - since)
            if remote_now is not None:
                wait = min(wait, self.settle - (remote_now - e.mtime))
            waits.append(max(wait, 0.0))
        self._since = current
        self.next_in = min(waits) if waits else None
        return ready

    def forget(self) -> None:
        self._since = {}
        self.next_in = None

    @property
    def watching(self) -> int:
        return len(self._since)


def is_old(entry: RemoteEntry, remote_now: float | None, settle: float) -> bool:
    """True when the file's mtime is at least `settle` old by the remote's clock."""
    return remote_now is not None and remote_now - entry.mtime >= settle


class PollWatcher:
    """Lists the roots every `poll_interval` (sooner when a file will have settled by then)."""

    mode = "poll"

    def __init__(
        self,
        source: Source,
        remote: RemoteConfig,
        pending: Pending,
        *,
        once: bool = False,
        reason: str | None = None,
    ) -> None:
        self.reason = reason  # why not the agent (shown in /status), or None
        self.source = source
        self.remote = remote
        self.pending = pending
        self.once = once
        self.settle = SettleTracker(remote.settle)
        self.log = structlog.get_logger("mediasyncd.watch").bind(remote=remote.name)
        self._wake = asyncio.Event()
        self._warned: set[tuple[str, bytes]] = set()

    def wake(self) -> None:
        self._wake.set()

    async def sightings(self) -> AsyncIterator[Sighting]:
        while True:
            yield await self.look()
            if self.once:
                return
            await self._sleep(self.next_pass_in())

    async def look(self) -> Sighting:
        """One pass: list, filter, settle."""
        sync_id = uuid.uuid4().hex[:12]
        started = time.monotonic()
        listing = await self.source.list_roots(self.remote.roots)
        rejected = self._warn(listing.missing_roots, listing.rejected, sync_id)
        accepts = self.remote.path_filter.accepts
        entries = [e for e in listing.entries if accepts(e.rel)]
        now = time.time()
        remote_now = listing.remote_now if listing.remote_now is not None else (now if self.once else None)
        waiting = self.pending(entries)
        ready = self.settle.observe(waiting, now, remote_now)
        if self.once:  # no next pass to compare with: not kept while the files are admitted and pulled
            self.settle.forget()
        return Sighting(
            listing,
            frozenset(ready),
            settling=len(waiting) - len(ready),
            rejected=rejected,
            seconds=time.monotonic() - started,
            sync_id=sync_id,
            entries=entries,
            waiting=waiting,
        )

    def _warn(self, missing: list[str], rejected: list[Rejected], sync_id: str) -> int:
        """Log each missing root and each unsafe name once while it stays (one that goes and comes back
        is logged again: what is remembered is this listing's, not every name a remote ever had); the
        number of names rejected for the first time."""
        new = 0
        now: set[tuple[str, bytes]] = set()
        for root in missing:
            now.add(("missing", root.encode()))
            if ("missing", root.encode()) not in self._warned:
                self.log.warning("root missing on remote", root=root, sync_id=sync_id)
        for bad in rejected:
            now.add((bad.root, bad.raw))
            if (bad.root, bad.raw) not in self._warned:
                new += 1
                self.log.warning(
                    "skipping unsafe name", path=bad.shown, root=bad.root, reason=bad.reason, sync_id=sync_id
                )
        self._warned = now
        return new

    def next_pass_in(self) -> float:
        """The poll interval, or sooner when a file seen settling will have settled by then."""
        due = self.settle.next_in
        if due is None:
            return self.remote.poll_interval
        return min(self.remote.poll_interval, max(due + 0.05, 0.2))

    async def _sleep(self, seconds: float) -> None:
        await sleep_or_wake(self._wake, seconds)
