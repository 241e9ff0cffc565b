"""The Ledger: every outcome of one remote's files goes through here, and nowhere else.

It owns the in-memory index of the remote's current files (the diff base), the set of files in flight,
the passes still open and the counters that `/status` and `sync --once` show. Each state change is
written to the state DB, with its event, in one transaction before the index changes. A pass's
`sync_complete` is written once every file it claimed has an outcome (the tallies: transfer/passes.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from mediasyncd.backoff import Backoff
from mediasyncd.digest import sha256_file
from mediasyncd.errors import StateDiskFull
from mediasyncd.paths import library_rel
from mediasyncd.progress import RemoteStatus
from mediasyncd.sources import Key, RemoteEntry, same_version
from mediasyncd.state import WAITING, FileRow, FileState, KnownFiles, LandedFile, NewEvent, Store
from mediasyncd.transfer.index import diff, still_pending
from mediasyncd.transfer.passes import Outcome, Passes
from mediasyncd.units import format_size
from mediasyncd.watchers.base import Sighting

RETRY = Backoff(base=10.0, cap=3600.0)


@dataclass
class PassCounts:
    landed: int = 0
    landed_bytes: int = 0
    adopted: int = 0  # already in the library: recorded without a transfer
    adopted_bytes: int = 0
    mismatched: int = 0  # a library copy with the remote's size and mtime but other bytes
    failed: int = 0
    changed: int = 0
    skipped_names: int = 0
    new: int = 0
    waiting_for_space: int = 0
    settling: int = 0  # complete-looking files younger than `settle` at the last pass: left for the next
    taken: int = 0  # files claimed for a transfer, and their bytes: what this run set out to do
    taken_bytes: int = 0
    failures: list[str] = field(default_factory=list)
    missing_roots: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Landed:
    row: FileRow
    sha256: str
    local_path: str


class Ledger:
    def __init__(self, remote: str, store: Store, status: RemoteStatus) -> None:
        self.remote = remote
        self.store = store
        self.status = status
        self.index = KnownFiles(remote)
        self.active: set[int] = set()
        self.counts = PassCounts()
        self.last_new = 0  # new files the last sighting recorded
        self.on_changed: Callable[[], None] | None = None  # agent mode: a listing finds the new version
        self._recheck: set[int] = set()  # in-flight rows a newer version was reported for
        self.passes = Passes(remote)
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
                    await self.store.mark_landed([LandedFile(row, row.sha256, row.landing_path)])
                    continue
            await self.store.set_state(row.id, FileState.SEEN)
        self.index = await self.store.current_files(self.remote)
        self.active.clear()
        totals = await self.store.totals(self.remote)
        self.status.landed_files = totals.landed_files
        self.status.landed_bytes = totals.landed_bytes
        self.status.failed_files = totals.failed_files

    def watch_purges(self) -> None:
        """From now on, files purged from the remote leave the index at once (else a session that runs
        for weeks beside a purge schedule would keep every file it ever landed in memory)."""
        self.store.watch_purged(self.remote, self.forget_purged)

    def unwatch_purges(self) -> None:
        self.store.unwatch_purged(self.remote, self.forget_purged)

    def forget_purged(self, files: Sequence[tuple[Key, int]]) -> None:
        """Purged files leave the index, each only while the index still holds that row: a new version
        seen since (another id) stays."""
        for key, file_id in files:
            stamp = self.index.stamp(key)
            if stamp is not None and stamp[0] == file_id:
                self.index.pop(key)

    # ------------------------------------------------------------------------------- intake

    def pending(self, entries: Sequence[RemoteEntry]) -> list[RemoteEntry]:
        """The entries whose version has not landed (what a watcher settles)."""
        return still_pending(self.index, entries)

    async def admit(self, sighting: Sighting, *, retry_now: bool = False) -> list[FileRow]:
        """Record what the sighting shows (new, changed, vanished files) and claim the complete files
        that wait for a transfer; failed files only once their retry is due (or `retry_now`)."""
        changed = sighting.entries if sighting.waiting is None else sighting.waiting
        d = diff(self.index, changed, self.active, full=sighting.full, listing=sighting.entries)
        if d.forget:
            await self.store.forget(d.forget)
            self.index.drop_ids(d.forget)
        if d.new or d.retire:
            for row in await self.store.add_seen(self.remote, d.new, d.retire):
                self.index.set(row)
        self.counts.new += len(d.new)
        self.last_new = len(d.new)
        self.counts.skipped_names += sighting.rejected
        self.counts.missing_roots.update(sighting.listing.missing_roots)
        self.status.skipped_names += sighting.rejected
        now = time.time()
        claimed: list[FileRow] = []
        for e in changed:
            if e.key not in sighting.ready or self.status.held:  # held: recorded, taken after a resume
                continue
            row = self.index[e.key]
            if row.id in self.active and not same_version(row.size, row.mtime, e.size, e.mtime):
                self._recheck.add(row.id)  # a newer version came while this one is in flight
            if row.state not in WAITING or row.id in self.active:
                continue
            if (
                row.state == FileState.FAILED
                and row.next_attempt
                and row.next_attempt > now
                and not retry_now
            ):
                continue
            self.active.add(row.id)
            claimed.append(row)
        await self._close_passes(self.passes.start(sighting.sync_id, len(d.new), claimed))
        self.counts.taken += len(claimed)
        self.counts.taken_bytes += sum(r.size for r in claimed)
        return claimed

    def taking(self, row: FileRow) -> None:
        """A transfer of `row` starts (the DB learns it with the landing intent)."""
        self.index.set(row.with_state(FileState.TRANSFERRING))

    # ------------------------------------------------------------------------------- outcomes

    async def intents(self, intents: Sequence[tuple[int, str, str]]) -> None:
        """(id, sha256, landing path) per file, before the renames: a crash between a rename and
        `landed` is resolved at start-up by checking the hash."""
        await self.store.set_landing_intents(intents)

    async def landed(self, items: Sequence[Landed]) -> None:
        """Files renamed into place: their states and events in one transaction, then the index and
        counters."""
        for item in await self._record(items, adopted=False):
            if item.local_path != library_rel(self.remote, item.row.rel):
                self.log.warning(
                    "kept both versions: different bytes at an occupied path",
                    path=item.row.rel,
                    landed_as=item.local_path,
                )

    async def adopted(self, items: Sequence[Landed]) -> None:
        """Files found already in the library with the remote's SHA-256 (no transfer): recorded landed and
        verified, each with a `file_synced` event marked adopted, in one transaction."""
        for item in items:
            self.active.discard(item.row.id)  # recorded or not, this session is done with it
        await self._record(items, adopted=True)

    async def _record(self, items: Sequence[Landed], *, adopted: bool) -> list[Landed]:
        """Record `items` as landed (or adopted) in one transaction, then the index, counters and log
        lines (one per file, one per batch); the items the DB took."""
        if not items:
            return []
        outcome, verb = (Outcome.ADOPTED, "adopted") if adopted else (Outcome.LANDED, "landed")
        files = [
            LandedFile(i.row, i.sha256, i.local_path, self.passes.of(i.row.id), adopted=adopted)
            for i in items
        ]
        done = await self.store.mark_landed(files, also=self._resolve([(i.row, outcome) for i in items]))
        recorded = [i for i in items if i.row.id in done]
        for item in recorded:
            row = item.row
            self.index.set(row.with_state(FileState.LANDED))
            self.active.discard(row.id)
            if row.state == FileState.FAILED:
                self.status.failed_files = max(0, self.status.failed_files - 1)
            if adopted:
                self.counts.adopted += 1
                self.counts.adopted_bytes += row.size
            else:
                self.counts.landed += 1
                self.counts.landed_bytes += row.size
                self.status.landed_latency.observe(max(0.0, time.time() - row.mtime))
            self.status.landed_files += 1
            self.status.landed_bytes += row.size
            self.log.info(
                verb, path=row.rel, local_path=item.local_path, size=row.size, sha256=item.sha256, detail=True
            )
        if recorded:
            one = {"path": recorded[0].row.rel} if len(recorded) == 1 else {}
            size = format_size(sum(i.row.size for i in recorded))
            self.log.info(f"{verb} batch", files=len(recorded), size=size, summary=True, **one)
        return recorded

    async def failed(self, row: FileRow, error: str, reason: str = "transfer") -> None:
        """This file's own failure: counted (by `reason`, for /metrics), retried later with backoff."""
        next_attempt = time.time() + RETRY.delay(row.attempts)
        sync_id = self.passes.of(row.id)
        completed = self._resolve([(row, Outcome.FAILED)])
        attempts = await self.store.mark_failed(row, error, next_attempt, sync_id, also=completed)
        self.index.set(replace(row, state=FileState.FAILED, attempts=attempts, next_attempt=next_attempt))
        self.active.discard(row.id)
        self.counts.failed += 1
        self.counts.failures.append(f"{row.rel}: {error}")
        self.status.failed_files += 1
        self.status.failures[reason] = self.status.failures.get(reason, 0) + 1
        self.log.error("transfer failed", path=row.rel, error=error, attempts=attempts, reason=reason)

    async def changed(self, row: FileRow) -> None:
        """Not the listed version (rewritten or vanished): taken again once it settles."""
        await self.store.set_state(row.id, FileState.SEEN)
        self.index.set(row.with_state(FileState.SEEN))
        self.active.discard(row.id)
        self.counts.changed += 1
        await self._close_passes(self._resolve([(row, Outcome.CHANGED)]))
        if self.on_changed is not None:
            self.on_changed()

    async def put_back(self, rows: Sequence[FileRow]) -> None:
        """Transfers that did not happen through no fault of the file (connection lost, no room on the
        library's disk): each row returns to what the DB holds ('transferring' becomes 'seen'), and its
        partial stays for a resume. Nothing counts against the file.
        Every row goes back in memory even when the DB cannot record it (its disk full: StateDiskFull,
        raised once all are back): a row left 'transferring' on disk is read as interrupted, and taken
        again, at the next start; one left claimed in memory would wait for a restart."""
        full: StateDiskFull | None = None
        for row in rows:
            stored = await self.store.get(row.id)
            if stored is not None and stored.state == FileState.TRANSFERRING:
                try:
                    await self.store.set_state(row.id, FileState.SEEN)
                except StateDiskFull as exc:
                    full = exc
                stored = stored.with_state(FileState.SEEN)
            known = self.index.get(row.key)
            if stored is None:
                self.index.pop(row.key)
            elif known is None or known.id == stored.id:
                self.index.set(stored)
            self.active.discard(row.id)
        await self._close_passes(self._resolve([(row, Outcome.PUT_BACK) for row in rows]))
        if full is not None:
            raise full

    async def release_all(self) -> None:
        """The session ended (connection lost, reload, stop): everything in flight goes back, and the
        passes still open are recorded as interrupted."""
        by_id = {r.id: r for r in self.index.unlanded() if r.id in self.active}
        for file_id in self.active - by_id.keys():
            stored = await self.store.get(file_id)
            if stored is not None:
                by_id[file_id] = stored
        interrupted = self.passes.interrupt_all()  # before the put-backs, which would complete them
        try:
            await self.put_back(list(by_id.values()))
            await self._close_passes(interrupted)
        finally:  # the next session claims them again, whatever the DB could record
            self.active.clear()
            self.status.in_flight.clear()
            self.status.queued = 0

    # ------------------------------------------------------------------------------- passes

    def pass_open(self, sync_id: str) -> bool:
        """True while the pass `sync_id` still waits for an outcome of a file it claimed."""
        return self.passes.is_open(sync_id)

    def _resolve(self, outcomes: Sequence[tuple[FileRow, Outcome]]) -> list[NewEvent]:
        """Count each outcome in its pass (see Passes.resolve); a file a newer version was reported for
        while it was in flight wakes the agent watcher, whose event for it was passed over."""
        for row, _ in outcomes:
            if row.id in self._recheck:
                self._recheck.discard(row.id)
                if self.on_changed is not None:
                    self.on_changed()
        return self.passes.resolve(outcomes)

    async def _close_passes(self, events: list[NewEvent]) -> None:
        if events:
            await self.store.append(events)
