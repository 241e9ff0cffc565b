"""Keeps one remote synced: connect with backoff, poll, pull, verify, land.

Data flows one way: listing -> diff/settle -> transfer queue -> pull to partial -> verify queue (remote
sha256sum, batched) -> land -> state DB -> `on_landed` hooks. One Puller per remote; a failure here
never reaches another remote's Puller.
"""

from __future__ import annotations

import asyncio
import posixpath
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from mediasyncd.config import RemoteConfig, TransferConfig
from mediasyncd.errors import HostKeyError, RemoteError, RemoteFileChanged, TransferError, UnsafePathError
from mediasyncd.paths import library_rel
from mediasyncd.progress import InFlight, RemoteStatus
from mediasyncd.state import FileRow, Store
from mediasyncd.transfer.landing import Library, sha256_file
from mediasyncd.transfer.pull import ByteBudget, RateLimiter, pull
from mediasyncd.transfer.remote import RemoteHost
from mediasyncd.transfer.ssh import Backoff, connect
from mediasyncd.transfer.tarstream import Member, batches, pull_batch
from mediasyncd.verify import Pulled, Verifier
from mediasyncd.watchers.listing import list_tree
from mediasyncd.watchers.poll import Key, SettleTracker, diff

LandedHook = Callable[[FileRow], Awaitable[None]]
BATCH_MIN = 4  # fewer small files than this go by SFTP: a stream costs an exec on the remote
RETRY = Backoff(base=10.0, cap=3600.0)
RECONNECT = Backoff(base=1.0, cap=300.0)
SPACE_CHECK_S = 5.0


@dataclass
class PassCounts:
    landed: int = 0
    landed_bytes: int = 0
    failed: int = 0
    changed: int = 0
    skipped_names: int = 0
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Batch:
    """Small files of one root, sent together in one tar stream."""

    rows: tuple[FileRow, ...]

    @property
    def size(self) -> int:
        return sum(r.size for r in self.rows)


Job = FileRow | Batch


class Puller:
    def __init__(
        self,
        remote: RemoteConfig,
        transfer: TransferConfig,
        *,
        library: Library,
        store: Store,
        status: RemoteStatus,
        state_dir: Path,
        executor: Executor,
        landing_lock: asyncio.Lock,
        library_min_free: int = 0,
        on_landed: LandedHook | None = None,
    ) -> None:
        self.remote = remote
        self.transfer = transfer
        self.library = library
        self.store = store
        self.status = status
        self.state_dir = state_dir
        self.executor = executor
        self.landing_lock = landing_lock
        self.library_min_free = library_min_free
        self.on_landed = on_landed
        self.log = structlog.get_logger("mediasyncd.puller").bind(remote=remote.name)
        self.limiter = RateLimiter(transfer.bwlimit)
        self.budget = ByteBudget(transfer.in_flight)
        self.settle = SettleTracker(remote.settle)
        self.known: dict[Key, FileRow] = {}
        self.active: set[int] = set()
        self.counts = PassCounts()
        self.wake = asyncio.Event()
        self._warned: set[tuple[str, bytes]] = set()
        self._not_in_batches: set[int] = set()  # ids a tar stream did not deliver: SFTP next time
        self._once = False

    # ------------------------------------------------------------------------------- entry points

    async def run(self) -> None:
        """Keep the remote synced until cancelled; reconnect with capped exponential backoff."""
        if self.remote.watch == "agent":
            self.log.warning("watch = 'agent' is not available in this version; polling instead")
        await self._load()
        attempt = 0
        while True:
            self.status.state = "connecting"
            try:
                host = await self._open()
            except HostKeyError as exc:
                self._record_error("error", str(exc))
                await self._sleep_or_wake(RECONNECT.cap)
                continue
            except RemoteError as exc:
                delay = RECONNECT.delay(attempt)
                attempt += 1
                self._record_error("backoff", f"{exc} (retrying in {delay:.0f}s)")
                await asyncio.sleep(delay)
                continue
            attempt = 0
            try:
                await self._serve(host)
            except RemoteError as exc:
                self._record_error("backoff", str(exc))
                await asyncio.sleep(RECONNECT.delay(0))
            finally:
                await self._close(host)

    async def sync_once(self) -> PassCounts:
        """One pass for `mediasyncd sync --once`: list, transfer everything settled, then return."""
        self._once = True
        await self._load()
        self.status.state = "connecting"
        host = await self._open()
        try:
            await self._serve(host)
        finally:
            await self._close(host)
        return self.counts

    # ------------------------------------------------------------------------------- connection

    async def _open(self) -> RemoteHost:
        conn = await connect(self.remote, self.state_dir)
        host = await RemoteHost.open(conn)
        self.status.state = "connected"
        self.status.last_error = None
        self.status.capabilities = host.caps.summary
        self.log.info("connected", capabilities=host.caps.summary)
        return host

    async def _close(self, host: RemoteHost) -> None:
        try:
            await asyncio.wait_for(host.close(), 5)
        except (OSError, TimeoutError):
            pass
        except Exception as exc:  # closing a broken connection must not mask the original problem
            self.log.debug("close failed", error=str(exc))

    def _record_error(self, state: str, message: str) -> None:
        self.status.state = "error" if state == "error" else "backoff"
        self.status.last_error = message
        self.log.warning("remote unavailable", error=message, state=self.status.state)

    async def _sleep_or_wake(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except TimeoutError:
            pass
        self.wake.clear()

    # ------------------------------------------------------------------------------- state

    async def _load(self) -> None:
        """Resolve what a crash left half-done, then load the diff base."""
        for row in await self.store.interrupted(self.remote.name):
            if row.landing_path and row.sha256:
                target = self.library.root / row.landing_path
                exists = await asyncio.get_running_loop().run_in_executor(self.executor, target.is_file)
                if exists:
                    digest = await asyncio.get_running_loop().run_in_executor(
                        self.executor, sha256_file, target
                    )
                    if digest == row.sha256:
                        await self.store.mark_landed(row.id, row.sha256, row.landing_path)
                        continue
            await self.store.set_state(row.id, "seen")
        self.known = await self.store.current_files(self.remote.name)
        totals = await self.store.totals(self.remote.name)
        self.status.landed_files = totals.landed_files
        self.status.landed_bytes = totals.landed_bytes
        self.status.failed_files = totals.failed_files

    # ------------------------------------------------------------------------------- serving

    async def _serve(self, host: RemoteHost) -> None:
        queue: asyncio.Queue[Job] = asyncio.Queue()
        verify: asyncio.Queue[Pulled] = asyncio.Queue()
        self.active.clear()
        try:
            async with asyncio.TaskGroup() as tg:
                workers = [
                    tg.create_task(self._transfer_worker(host, queue, verify))
                    for _ in range(self.transfer.concurrency)
                ]
                verifier = Verifier(
                    self.remote.name, library=self.library, store=self.store, executor=self.executor,
                    landing_lock=self.landing_lock, outcomes=self,
                )  # fmt: skip
                workers.append(tg.create_task(verifier.run(host, verify)))
                while True:
                    await self._pass(host, queue)
                    if self._once:
                        await queue.join()
                        await verify.join()
                        for w in workers:
                            w.cancel()
                        return
                    await self._sleep_or_wake(self._next_pass_in())
        except BaseExceptionGroup as group:
            remote_errors = group.subgroup(RemoteError)
            if remote_errors is not None and remote_errors.exceptions:
                first = remote_errors.exceptions[0]
                while isinstance(first, BaseExceptionGroup):
                    first = first.exceptions[0]
                rest = group.subgroup(lambda e: not isinstance(e, RemoteError | BaseExceptionGroup))
                if rest is None:
                    raise first from None
            raise
        finally:
            await self._release_active()

    def _next_pass_in(self) -> float:
        """The poll interval, or sooner when a file seen settling will have settled by then."""
        due = self.settle.next_in
        if due is None:
            return self.remote.poll_interval
        return min(self.remote.poll_interval, max(due + 0.05, 0.2))

    async def _release_active(self) -> None:
        """Rows left 'transferring' by a lost connection go back to 'seen' (their partials stay)."""
        for file_id in list(self.active):
            row = await self.store.get(file_id)
            if row is None or row.state not in ("transferring", "seen"):
                continue
            if row.state == "transferring":
                await self.store.set_state(file_id, "seen")
            self.known[row.key] = _with(row, state="seen")
        self.active.clear()
        self.status.in_flight.clear()
        self.status.queued = 0

    async def _pass(self, host: RemoteHost, queue: asyncio.Queue[Job]) -> None:
        sync_id = uuid.uuid4().hex[:12]
        log = self.log.bind(sync_id=sync_id)
        started = time.monotonic()
        listing = await list_tree(host, self.remote.roots)
        for root in listing.missing_roots:
            if ("missing", root.encode()) not in self._warned:
                self._warned.add(("missing", root.encode()))
                log.warning("root missing on remote", root=root)
        for bad in listing.rejected:
            if (bad.root, bad.raw) not in self._warned:
                self._warned.add((bad.root, bad.raw))
                self.counts.skipped_names += 1
                self.status.skipped_names += 1
                log.warning("skipping unsafe name", path=bad.shown, root=bad.root, reason=bad.reason)
        accepts = self.remote.path_filter.accepts
        entries = [e for e in listing.entries if accepts(e.rel)]
        d = diff(self.known, entries, self.active)
        if not d.empty:
            if d.forget:
                await self.store.forget(d.forget)
                gone = set(d.forget)
                self.known = {k: r for k, r in self.known.items() if r.id not in gone}
            if d.new or d.retire:
                for row in await self.store.add_seen(self.remote.name, d.new, d.retire):
                    self.known[row.key] = row
        now = time.time()
        remote_now = listing.remote_now if listing.remote_now is not None else (now if self._once else None)
        waiting = [e for e in entries if self.known[e.key].state in ("seen", "failed")]
        ready = self.settle.observe(waiting, now, remote_now)
        settling = 0
        ready_rows: list[FileRow] = []
        for e in waiting:
            row = self.known[e.key]
            if row.state not in ("seen", "failed") or row.id in self.active:
                continue
            if e.key not in ready:
                settling += 1
                continue
            if row.state == "failed" and row.next_attempt and row.next_attempt > now and not self._once:
                continue
            self.active.add(row.id)
            ready_rows.append(row)
        for job in self._jobs(host, ready_rows):
            queue.put_nowait(job)
        self.status.settling = settling
        self.status.queued = queue.qsize()
        self.status.last_pass_at = time.time()
        self.status.last_pass_s = time.monotonic() - started
        self.status.last_pass_result = "ok"
        log.info(
            "pass",
            listed=len(entries),
            new=len(d.new),
            queued=queue.qsize(),
            settling=settling,
            method=listing.method,
            seconds=round(self.status.last_pass_s, 3),
        )

    def _jobs(self, host: RemoteHost, rows: list[FileRow]) -> list[Job]:
        """Small files go in tar batches where the remote has GNU tar; the rest one by one over SFTP."""
        small_below = self.transfer.batch_below if host.caps.tar and host.shell is not None else 0
        small = [r for r in rows if r.size < small_below and r.id not in self._not_in_batches]
        jobs: list[Job] = [r for r in rows if not (r.size < small_below and r.id not in self._not_in_batches)]
        small.sort(key=lambda r: (r.root, r.rel))
        # A quarter of the byte budget per stream: several streams overlap their remote start-up.
        per_stream = max(self.transfer.in_flight // 4, 1)
        groups = batches([(r.root, r.size) for r in small], self.transfer.batch_files, per_stream)
        for group in groups:
            members = tuple(small[i] for i in group)
            jobs.extend([Batch(members)] if len(members) >= BATCH_MIN else members)
        return jobs

    # ------------------------------------------------------------------------------- transfer

    async def _transfer_worker(
        self, host: RemoteHost, queue: asyncio.Queue[Job], verify: asyncio.Queue[Pulled]
    ) -> None:
        while True:
            job = await queue.get()
            self.status.queued = queue.qsize()
            taken = await self.budget.acquire(job.size)
            try:
                if isinstance(job, Batch):
                    await self._pull_batch(host, job, verify)
                    continue
                pulled = await self._pull_one(host, job)
                if pulled is not None:
                    verify.put_nowait(pulled)
                else:
                    self.active.discard(job.id)
            except (TransferError, UnsafePathError, OSError) as exc:
                for row in job.rows if isinstance(job, Batch) else (job,):
                    await self.failed(row, str(exc))
            finally:
                await self.budget.release(taken)
                self.status.in_flight.pop(job.rows[0].id if isinstance(job, Batch) else job.id, None)
                queue.task_done()

    async def _pull_batch(self, host: RemoteHost, batch: Batch, verify: asyncio.Queue[Pulled]) -> None:
        """One tar stream for many small files; each member is verified and landed like any file.
        Files the stream did not deliver go back to the queue's next pass, then by SFTP."""
        rows = {r.rel: r for r in batch.rows}
        root = batch.rows[0].root
        partials = {r.rel: self.library.partial_path(self.remote.name, r.id) for r in batch.rows}
        for r in batch.rows:
            await self._wait_for_space(r)
            self.known[r.key] = _with(r, state="transferring")
        progress = InFlight(f"{len(rows)} files in one tar stream", batch.size)
        self.status.in_flight[batch.rows[0].id] = progress
        delivered: set[str] = set()

        def on_member(member: Member) -> None:
            row = rows[member.rel]
            if member.size != row.size or int(member.mtime) != int(row.mtime):
                return  # not the listed version: the next pass sees the change
            delivered.add(member.rel)
            verify.put_nowait(Pulled(row, member.sha256, partials[member.rel]))

        try:
            await pull_batch(
                host.conn,
                root,
                partials,
                executor=self.executor,
                on_member=on_member,
                progress=progress.update,
            )
        except TransferError as exc:
            self.log.warning("tar stream failed; those files go by SFTP", error=str(exc), files=len(rows))
        for rel, row in rows.items():
            if rel not in delivered:
                self._not_in_batches.add(row.id)
                await asyncio.get_running_loop().run_in_executor(
                    self.executor, self.library.discard, partials[rel]
                )
                await self.changed(row)

    async def _pull_one(self, host: RemoteHost, row: FileRow) -> Pulled | None:
        log = self.log.bind(path=row.rel)
        await self._wait_for_space(row)
        self.known[row.key] = _with(row, state="transferring")  # the DB learns it with the landing intent
        partial = self.library.partial_path(self.remote.name, row.id)
        progress = InFlight(row.rel, row.size)
        self.status.in_flight[row.id] = progress
        try:
            digest = await pull(
                host.sftp,
                posixpath.join(row.root, row.rel),
                partial,
                size=row.size,
                mtime=row.mtime,
                executor=self.executor,
                block_size=self.transfer.block_size,
                max_requests=self.transfer.max_requests,
                check_attrs=not host.caps.sha256sum,
                limiter=self.limiter,
                progress=progress.update,
            )
        except RemoteFileChanged as exc:
            log.info("changed during transfer; will retry once settled", reason=str(exc))
            await self.changed(row)
            return None
        return Pulled(row, digest, partial)

    async def _wait_for_space(self, row: FileRow) -> None:
        loop = asyncio.get_running_loop()
        warned = False
        while True:
            free = await loop.run_in_executor(self.executor, self.library.free_bytes)
            if free - row.size >= self.library_min_free:
                if warned:
                    self.log.info("library has space again; transfers resume", free=free)
                    self.status.paused = None
                return
            message = f"library disk low: {free} bytes free, floor {self.library_min_free}"
            if self._once:
                raise TransferError(message)
            if not warned:
                self.log.warning("transfers paused: library disk low", free=free, floor=self.library_min_free)
                warned = True
            self.status.paused = message
            await asyncio.sleep(SPACE_CHECK_S)

    # ------------------------------------------------------------------------------- verify + land

    async def landed(self, item: Pulled, local_rel: str) -> None:
        row = item.row
        landed = _with(row, state="landed", sha256=item.sha256, local_path=local_rel)
        self.known[row.key] = landed
        self.active.discard(row.id)
        if row.state == "failed":
            self.status.failed_files = max(0, self.status.failed_files - 1)
        self.counts.landed += 1
        self.counts.landed_bytes += row.size
        self.status.landed_files += 1
        self.status.landed_bytes += row.size
        self.log.info("landed", path=row.rel, local_path=local_rel, size=row.size, sha256=item.sha256)
        if local_rel != library_rel(self.remote.name, row.rel):
            self.log.warning(
                "kept both versions: different bytes at an occupied path", path=row.rel, landed_as=local_rel
            )
        if self.on_landed is not None:
            await self.on_landed(landed)

    # ------------------------------------------------------------------------------- failures

    async def changed(self, row: FileRow) -> None:
        await self.store.set_state(row.id, "seen")
        self.known[row.key] = _with(row, state="seen")
        self.active.discard(row.id)
        self.counts.changed += 1

    async def failed(self, row: FileRow, error: str) -> None:
        next_attempt = time.time() + RETRY.delay(row.attempts)
        attempts = await self.store.mark_failed(row.id, error, next_attempt)
        self.known[row.key] = _with(row, state="failed", attempts=attempts, next_attempt=next_attempt)
        self.active.discard(row.id)
        self.counts.failed += 1
        self.counts.failures.append(f"{row.rel}: {error}")
        self.status.failed_files += 1
        self.log.error("transfer failed", path=row.rel, error=error, attempts=attempts)


def _with(row: FileRow, **changes: object) -> FileRow:
    return replace(row, **changes)  # type: ignore[arg-type]
