"""Transfer workers: take a job from the ready queue, wait for room (bytes in flight, library disk),
pull it through the source into partials, and hand what arrived to the verifier.

Each failure is sorted where it happens: the file's own problem goes to the Ledger as a failure; a
changed file back to settling; a full library disk puts the file back to wait for room; a lost connection
(RemoteError) ends the session, and the session puts everything in flight back.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Awaitable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import structlog

from mediasyncd.config import TransferConfig
from mediasyncd.errors import LibraryFull, RemoteFileChanged, TransferError, UnsafePathError
from mediasyncd.progress import InFlight, RemoteStatus
from mediasyncd.sources import Source
from mediasyncd.sources.receive import RateLimiter
from mediasyncd.sources.tar import Member
from mediasyncd.state import FileRow
from mediasyncd.transfer.budget import ByteBudget, SpaceGate
from mediasyncd.transfer.jobs import Batch, Job, rows_of
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.ledger import Ledger
from mediasyncd.transfer.verify import EARLY_HASH, Backlog, Pulled


class Transfers:
    """The transfer workers of one remote's session."""

    def __init__(
        self,
        remote: str,
        source: Source,
        ledger: Ledger,
        *,
        library: Library,
        transfer: TransferConfig,
        executor: Executor,
        space: SpaceGate,
        status: RemoteStatus,
        wait_for_space: bool = True,
    ) -> None:
        self.remote = remote
        self.source = source
        self.ledger = ledger
        self.library = library
        self.executor = executor
        self.space = space
        self.status = status
        self.wait_for_space = wait_for_space
        self.limiter = RateLimiter(transfer.bwlimit)
        self.budget = ByteBudget(transfer.in_flight)
        self.not_in_batches: set[int] = set()  # ids a stream did not deliver: one by one next time
        self.held = 0  # jobs taken by a worker that still wait for room (disk space, bytes in flight)
        # Tar streams at once, over a shell: each holds a session of the remote's sshd (a channel, or a
        # connection of an exec source's `ssh`). The byte budget alone let 20 streams of tiny files run
        # together, and sshd's default `MaxSessions 10` refused the eighth or so: the pull failed.
        self.streams = asyncio.Semaphore(source.caps.streams) if source.caps.tar else None
        self.log = structlog.get_logger("mediasyncd.transfer").bind(remote=remote)

    def queued(self, queue: asyncio.Queue[Job]) -> int:
        """Jobs waiting: in the queue, or taken by a worker that still waits for room."""
        return queue.qsize() + self.held

    async def worker(self, queue: asyncio.Queue[Job], verify: Backlog) -> None:
        while True:
            job = await queue.get()
            try:
                await self._one(job, queue, verify)
            finally:
                self.status.in_flight.pop(rows_of(job)[0].id, None)
                self.status.queued = self.queued(queue)
                queue.task_done()

    async def _one(self, job: Job, queue: asyncio.Queue[Job], verify: Backlog) -> None:
        if self.streams is None or not isinstance(job, Batch):
            await self._room(queue, verify)
            await self._take(job, queue, verify)
            return
        await self._held(self.streams.acquire(), queue)
        try:
            await self._room(queue, verify)
            await self._take(job, queue, verify)
        finally:
            self.streams.release()

    async def _held(self, wait: Awaitable[Any], queue: asyncio.Queue[Job]) -> None:
        """Wait for a turn (a stream, room in the backlog); the job waiting counts as queued."""
        self.held += 1
        self.status.queued = self.queued(queue)
        try:
            await wait
        finally:
            self.held -= 1

    async def _room(self, queue: asyncio.Queue[Job], verify: Backlog) -> None:
        """Where the landings are behind (small files), pull no further ahead of them."""
        if verify.counted >= verify.most:
            await self._held(verify.room(), queue)

    async def _take(self, job: Job, queue: asyncio.Queue[Job], verify: Backlog) -> None:
        self.held += 1
        self.status.queued = self.queued(queue)
        try:
            if self._paused():  # the operator paused the remote: queued files go back, untouched
                await self.ledger.put_back(rows_of(job))
                return
            promised = await self._still_to_write(job)
            if not await self.space.reserve(promised, self.status, wait=self.wait_for_space):
                await self._wait_later(rows_of(job))
                return
            if self._paused():  # paused while this one waited for room
                self.space.release(promised)
                await self.ledger.put_back(rows_of(job))
                return
            try:
                taken = await self.budget.acquire(job.size)
            except BaseException:
                self.space.release(promised)
                raise
        finally:
            self.held -= 1
            self.status.queued = self.queued(queue)
        try:
            if isinstance(job, Batch):
                if rest := await self._pull_batch(job, verify):
                    await self._room_later(rest, queue)
            else:
                pulled = await self._pull_one(job)
                if pulled is not None:
                    verify.put_nowait(pulled)
        except LibraryFull as exc:
            self.space.full(str(exc))
            await self._room_later(rows_of(job), queue)  # a single file resumes from its partial
        except (TransferError, UnsafePathError, OSError) as exc:
            reason = (
                "unsafe_path"
                if isinstance(exc, UnsafePathError)
                else ("transfer" if isinstance(exc, TransferError) else "local_io")
            )
            for row in rows_of(job):
                await self.ledger.failed(row, str(exc), reason)
        finally:
            self.space.release(promised)
            await self.budget.release(taken)

    def _paused(self) -> bool:
        """The remote is held (`mediasyncd pause`): start no transfer; files in flight finish."""
        return self.status.held

    async def _still_to_write(self, job: Job) -> int:
        """Bytes the job will add to the library's disk: a single file resumes from its partial."""
        if isinstance(job, Batch):
            return job.size
        partial = self.library.partial_path(self.remote, job.id)
        return job.size - await asyncio.to_thread(_size_of, partial)

    async def _pull_one(self, row: FileRow) -> Pulled | None:
        self.ledger.taking(row)
        partial = self.library.partial_path(self.remote, row.id)
        progress = InFlight(row.rel, row.size)
        self.status.in_flight[row.id] = progress

        def update(done: int) -> None:
            if progress.start_bytes is None and done > 0:  # the first report is where it starts
                self.status.resumed_files += 1
                self.status.resumed_bytes += done
            progress.update(done)

        path = posixpath.join(row.root, row.rel)
        early = self._early_hash(path, row.size)
        try:
            digest = await self.source.pull(
                path,
                partial,
                size=row.size,
                mtime=row.mtime,
                executor=self.executor,
                limiter=self.limiter,
                progress=update,
            )
        except RemoteFileChanged as exc:
            self.log.info("changed during transfer; will retry once settled", path=row.rel, reason=str(exc))
            await self.ledger.changed(row)
            return None
        return Pulled(row, digest, partial, early)

    def _early_hash(self, path: str, size: int) -> asyncio.Future[dict[str, str] | None] | None:
        """A large file's remote hash, asked for as its transfer starts (verify.EARLY_HASH); what a
        failed transfer leaves of it is dropped."""
        if size < EARLY_HASH or not self.source.caps.hashes_apart:
            return None
        task = asyncio.ensure_future(self.source.sha256([path]))
        task.add_done_callback(_seen)
        return task

    async def _pull_batch(self, batch: Batch, verify: Backlog) -> tuple[FileRow, ...]:
        """One stream for many small files; each member is verified and landed like any file. Files the
        stream did not deliver go back to the next pass, then one by one; those it did not deliver because
        the library's disk filled are returned, to wait for room."""
        rows = {r.rel: r for r in batch.rows}
        root = batch.rows[0].root
        partials = {r.rel: self.library.partial_path(self.remote, r.id) for r in batch.rows}
        for r in batch.rows:
            self.ledger.taking(r)
        progress = InFlight(f"{len(rows)} files in one tar stream", batch.size)
        self.status.in_flight[batch.rows[0].id] = progress
        delivered: set[str] = set()
        # the source's hashes of what it sent, where they come with the stream (caps.hashes_in_stream)
        theirs: asyncio.Future[dict[str, str] | None] | None = None
        if self.source.caps.hashes_in_stream:
            theirs = asyncio.get_running_loop().create_future()
            theirs.add_done_callback(_seen)

        def on_member(member: Member) -> None:
            row = rows[member.rel]
            if member.size != row.size or int(member.mtime) != int(row.mtime):
                return  # not the listed version: the next pass sees the change
            delivered.add(member.rel)
            verify.put_nowait(Pulled(row, member.sha256, partials[member.rel], theirs))

        hashes: dict[str, str] | None = None
        try:
            hashes = await self.source.pull_batch(
                root, partials, executor=self.executor, on_member=on_member, progress=progress.update,
                sizes={r.rel: r.size for r in batch.rows}, limiter=self.limiter,
            )  # fmt: skip
        except TransferError as exc:
            self.log.warning("tar stream failed; those files go one by one", error=str(exc), files=len(rows))
        except LibraryFull as exc:
            self.space.full(str(exc))
            undelivered = [r for rel, r in rows.items() if rel not in delivered]
            await self._discard(undelivered, partials)
            return tuple(undelivered)
        except asyncio.CancelledError:
            if theirs is not None:
                theirs.cancel()
            raise
        finally:
            if theirs is not None:
                self._settle(theirs, hashes, [posixpath.join(root, rel) for rel in delivered])
        for rel, row in rows.items():
            if rel not in delivered:
                self.not_in_batches.add(row.id)
                await self._discard([row], partials)
                await self.ledger.changed(row)
        return ()

    def _settle(
        self, theirs: asyncio.Future[dict[str, str] | None], hashes: dict[str, str] | None, paths: list[str]
    ) -> None:
        """The stream's members wait on `theirs` for the remote's hashes: those that came with it, else
        (a stream that did not end cleanly or failed) the source's `sha256` of them, asked now."""
        if theirs.done():  # cancelled
            return
        if hashes is not None or not paths:
            theirs.set_result(hashes or {})
            return
        asked = asyncio.ensure_future(self.source.sha256(paths))

        def passed(task: asyncio.Future[dict[str, str] | None]) -> None:
            if theirs.done():
                _seen(task)
            elif task.cancelled():
                theirs.cancel()
            elif (error := task.exception()) is not None:
                theirs.set_exception(error)
            else:
                theirs.set_result(task.result())

        asked.add_done_callback(passed)

    async def _room_later(self, rows: tuple[FileRow, ...], queue: asyncio.Queue[Job]) -> None:
        """Files that met a full library disk. With `wait_for_space` (`run`) they queue again and wait at
        the gate, so they start once space returns even where no listing comes to take them again (the
        agent watches for changes only); otherwise (`sync --once`) they go back to the Ledger, counted."""
        if self.wait_for_space:
            queue.put_nowait(Batch(rows) if len(rows) > 1 else rows[0])
        else:
            await self._wait_later(rows)

    async def _wait_later(self, rows: tuple[FileRow, ...] | list[FileRow]) -> None:
        """Files that wait for room on the library's disk (`sync --once`): back to the Ledger, counted,
        not failed."""
        self.ledger.counts.waiting_for_space += len(rows)
        await self.ledger.put_back(rows)

    async def _discard(self, rows: list[FileRow], partials: dict[str, Path]) -> None:
        loop = asyncio.get_running_loop()
        for row in rows:
            await loop.run_in_executor(self.executor, self.library.discard, partials[row.rel])


def _seen(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # an early hash whose file failed: nobody else looks at it


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
