"""The Ledger: every outcome of one remote's files goes through here, and nowhere else.

It owns the in-memory index of the remote's current files (the diff base), the set of files in flight and
the counters that `/status` and `sync --once` show, and writes each state change to the state DB in one
transaction before it changes the index. Nobody else writes a file's state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from mediasyncd.backoff import Backoff
from mediasyncd.digest import sha256_file
from mediasyncd.paths import library_rel
from mediasyncd.progress import RemoteStatus
from mediasyncd.sources import Key, RemoteEntry, same_version
from mediasyncd.state import FileRow, Store
from mediasyncd.transfer.index import diff
from mediasyncd.watchers.base import Sighting

LandedHook = Callable[[FileRow], Awaitable[None]]
RETRY = Backoff(base=10.0, cap=3600.0)
WAITING = ("seen", "failed")


@dataclass
class PassCounts:
    landed: int = 0
    landed_bytes: int = 0
    failed: int = 0
    changed: int = 0
    skipped_names: int = 0
    new: int = 0
    waiting_for_space: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Landed:
    row: FileRow
    sha256: str
    local_path: str


class Ledger:
    def __init__(
        self, remote: str, store: Store, status: RemoteStatus, *, on_landed: LandedHook | None = None
    ) -> None:
        self.remote = remote
        self.store = store
        self.status = status
        self.on_landed = on_landed
        self.index: dict[Key, FileRow] = {}
        self.active: set[int] = set()
        self.counts = PassCounts()
        self.log = structlog.get_logger("mediasyncd.ledger").bind(remote=remote)

    # ------------------------------------------------------------------------------- start-up

    async def load(self, library: Path, executor: Executor) -> None:
        """Resolve what a crash left half-done, then load the diff base and the totals."""
        loop = asyncio.get_running_loop()
        for row in await self.store.interrupted(self.remote):
            if row.landing_path and row.sha256:
                target = library / row.landing_path
                there = await loop.run_in_executor(executor, target.is_file)
                if there and await loop.run_in_executor(executor, sha256_file, target) == row.sha256:
                    await self.store.mark_landed(row.id, row.sha256, row.landing_path)
                    continue
            await self.store.set_state(row.id, "seen")
        self.index = await self.store.current_files(self.remote)
        self.active.clear()
        totals = await self.store.totals(self.remote)
        self.status.landed_files = totals.landed_files
        self.status.landed_bytes = totals.landed_bytes
        self.status.failed_files = totals.failed_files

    # ------------------------------------------------------------------------------- intake

    def pending(self, entry: RemoteEntry) -> bool:
        """True while this version of the file has not landed (what a watcher settles)."""
        row = self.index.get(entry.key)
        if row is None or row.state in WAITING:
            return True
        return not same_version(row.size, row.mtime, entry.size, entry.mtime)

    async def admit(self, sighting: Sighting, *, retry_now: bool = False) -> list[FileRow]:
        """Record what the sighting shows (new, changed, vanished files) and claim the complete files
        that wait for a transfer; failed files only once their retry is due (or `retry_now`)."""
        d = diff(self.index, sighting.entries, self.active, full=sighting.full)
        if d.forget:
            await self.store.forget(d.forget)
            gone = set(d.forget)
            self.index = {k: r for k, r in self.index.items() if r.id not in gone}
        if d.new or d.retire:
            for row in await self.store.add_seen(self.remote, d.new, d.retire):
                self.index[row.key] = row
        self.counts.new += len(d.new)
        self.counts.skipped_names += sighting.rejected
        self.status.skipped_names += sighting.rejected
        now = time.time()
        claimed: list[FileRow] = []
        for e in sighting.entries:
            if e.key not in sighting.ready:
                continue
            row = self.index[e.key]
            if row.state not in WAITING or row.id in self.active:
                continue
            if row.state == "failed" and row.next_attempt and row.next_attempt > now and not retry_now:
                continue
            self.active.add(row.id)
            claimed.append(row)
        return claimed

    def taking(self, row: FileRow) -> None:
        """A transfer of `row` starts (the DB learns it with the landing intent)."""
        self.index[row.key] = replace(row, state="transferring")

    # ------------------------------------------------------------------------------- outcomes

    async def intents(self, intents: Sequence[tuple[int, str, str]]) -> None:
        """(id, sha256, landing path) per file, before the renames: a crash between a rename and
        `landed` is resolved at start-up by checking the hash."""
        await self.store.set_landing_intents(intents)

    async def landed(self, items: Sequence[Landed]) -> None:
        """Files renamed into place: one transaction, then the index, counters and hooks."""
        await self.store.mark_landed_many([(i.row.id, i.sha256, i.local_path) for i in items])
        for item in items:
            row = item.row
            self.index[row.key] = replace(row, state="landed", sha256=item.sha256, local_path=item.local_path)
            self.active.discard(row.id)
            if row.state == "failed":
                self.status.failed_files = max(0, self.status.failed_files - 1)
            self.counts.landed += 1
            self.counts.landed_bytes += row.size
            self.status.landed_files += 1
            self.status.landed_bytes += row.size
            self.log.info(
                "landed", path=row.rel, local_path=item.local_path, size=row.size, sha256=item.sha256
            )
            if item.local_path != library_rel(self.remote, row.rel):
                self.log.warning(
                    "kept both versions: different bytes at an occupied path",
                    path=row.rel,
                    landed_as=item.local_path,
                )
        if self.on_landed is not None:
            for item in items:
                await self.on_landed(self.index[item.row.key])

    async def failed(self, row: FileRow, error: str) -> None:
        """This file's own failure: counted, retried later with backoff."""
        next_attempt = time.time() + RETRY.delay(row.attempts)
        attempts = await self.store.mark_failed(row.id, error, next_attempt)
        self.index[row.key] = replace(row, state="failed", attempts=attempts, next_attempt=next_attempt)
        self.active.discard(row.id)
        self.counts.failed += 1
        self.counts.failures.append(f"{row.rel}: {error}")
        self.status.failed_files += 1
        self.log.error("transfer failed", path=row.rel, error=error, attempts=attempts)

    async def changed(self, row: FileRow) -> None:
        """Not the listed version (rewritten or vanished): taken again once it settles."""
        await self.store.set_state(row.id, "seen")
        self.index[row.key] = replace(row, state="seen")
        self.active.discard(row.id)
        self.counts.changed += 1

    async def put_back(self, rows: Sequence[FileRow]) -> None:
        """Transfers that did not happen through no fault of the file (connection lost, no room on the
        library's disk): each row returns to what the DB holds ('transferring' becomes 'seen'), and its
        partial stays for a resume. Nothing counts against the file."""
        for row in rows:
            stored = await self.store.get(row.id)
            if stored is not None and stored.state == "transferring":
                await self.store.set_state(row.id, "seen")
                stored = replace(stored, state="seen")
            if stored is None:
                self.index.pop(row.key, None)
            elif self.index.get(row.key, stored).id == stored.id:
                self.index[row.key] = stored
            self.active.discard(row.id)

    async def release_all(self) -> None:
        """The session ended (connection lost, reload, stop): everything in flight goes back."""
        by_id = {r.id: r for r in self.index.values() if r.id in self.active}
        for file_id in self.active - by_id.keys():
            stored = await self.store.get(file_id)
            if stored is not None:
                by_id[file_id] = stored
        await self.put_back(list(by_id.values()))
        self.active.clear()
        self.status.in_flight.clear()
        self.status.queued = 0
