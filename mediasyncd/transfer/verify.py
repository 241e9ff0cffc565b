"""Verify and land what the transfer workers pulled, in batches, off the transfer path.

Stage one asks the source for the SHA-256 of a batch (one command) and drops mismatches; stage two lands
the batch (one intent transaction, the renames, one landed transaction), so hashing the next batch overlaps
landing this one. What happens to each file is recorded by the Ledger.
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from mediasyncd.paths import library_rel
from mediasyncd.sources import Source
from mediasyncd.sources.receive import LOCAL_FULL
from mediasyncd.sources.write_place import PLACE, WritePlace
from mediasyncd.state import FileRow
from mediasyncd.transfer.landing import Arrival, Library, Plan, Renames
from mediasyncd.transfer.ledger import Landed, Ledger

VERIFY_BATCH = 256
VERIFY_WAIT = 0.05  # seconds a verify batch waits for more files: fewer remote commands, little latency
# In one pass, while transfers run, a verify batch waits this long for more: nobody watches the latency of
# a `sync --once`, and each batch costs the remote one hasher process per folder in it (`openssl` starts
# in ~4 ms of CPU). MANY (2,000 files in 9 folders) ran 226 of them with VERIFY_WAIT, ~0.9 CPU-s on a
# loopback remote that shares the cores (docs/benchmarks.md, issue 21 third pass).
ONE_PASS_VERIFY_WAIT = 0.5
# ... but only while the batch holds fewer bytes than this: the remote hashes a batch after its files
# arrived, and a large file held back would be hashed at the end of the pull instead of during it.
ONE_PASS_VERIFY_BYTES = 32 << 20
# A file this large has its remote hash taken while it travels (where the source hashes apart from
# sending: Capabilities.hashes_apart), not after its last byte: the pull of 2 x 200 MB on loopback
# waited ~0.33 s at its end for the two hashes, one after the other.
EARLY_HASH = ONE_PASS_VERIFY_BYTES
DONE_CHECK = 0.005  # one pass: how often a waiting batch looks whether the transfers are all done
# In a one-pass pull (`sync --once`), while transfers are still running, verified files wait up to this
# long to land together: each landing flushes the library's filesystem and commits two state-DB
# transactions, and a flush beside running copies slows them (a local PNG pull landed 36 times in 2-3 s
# before; see docs/benchmarks.md). A daemon lands each file as soon as it is verified.
LAND_GATHER = 0.5
# ... and at most this many: files whose hashes came with their stream verify faster than they land, and
# a first pull of 20,000 small files landed them all in one batch (their plans, events and paths at
# once: its peak RSS 92-110 MB, 85 MB with this bound; docs/benchmarks.md, eighteenth pass).
LAND_MOST = 2048
RENAME_SLICE = 256  # renames made at a time where they run on the event loop (~40 us each here)
# Files pulled and not yet landed (or dropped) before a transfer worker waits to start another job: the
# pulls of small files outrun the landings (each flushes the file system), and a first pull of 20,000
# tiny files held ~17,000 pulled files at once, each with its row, partial path and hashes (~1.3 KB of
# Python objects a file). Two landings' worth keeps the lander fed (docs/benchmarks.md, nineteenth pass).
BACKLOG_MOST = 2 * LAND_MOST


@dataclass(frozen=True)
class Pulled:
    row: FileRow
    sha256: str
    partial: Path
    remote_hash: asyncio.Future[dict[str, str] | None] | None = None  # taken while it travelled


class Backlog(asyncio.Queue[Pulled]):
    """The verifier's queue: pulled files on their way to verification and landing. A file counts from its
    `put` until its `task_done` (landed, failed or dropped); `room()` waits while `most` are counted. The
    bound is soft: a job that starts below it may bring a whole batch."""

    def __init__(self, most: int | None = None) -> None:
        super().__init__()
        self.most = max(BACKLOG_MOST if most is None else most, 1)
        self.counted = 0
        self._room = asyncio.Event()
        self._room.set()

    def put_nowait(self, item: Pulled) -> None:
        super().put_nowait(item)
        self.counted += 1
        if self.counted >= self.most:
            self._room.clear()

    def task_done(self) -> None:
        super().task_done()
        self.counted -= 1
        if self.counted < self.most:
            self._room.set()

    async def room(self) -> None:
        await self._room.wait()


class Verifier:
    def __init__(
        self,
        remote: str,
        *,
        library: Library,
        ledger: Ledger,
        executor: Executor,
        landing_lock: asyncio.Lock,
        place: WritePlace = PLACE,
    ) -> None:
        self.remote = remote
        self.place = place  # where the library's plans and renames run: the event loop or a thread
        self.library = library
        self.ledger = ledger
        self.executor = executor
        self.landing_lock = landing_lock
        # one pass only (None: a daemon): whether transfers are still running (see LAND_GATHER)
        self.more_coming: Callable[[], bool] | None = None
        self.log = structlog.get_logger("mediasyncd.verify").bind(remote=remote)

    async def run(self, source: Source, verify: asyncio.Queue[Pulled]) -> None:
        """Verify what the transfer workers pulled, in batches (one remote command each), and hand each
        batch to the lander, so that hashing the next batch overlaps landing this one."""
        landing: asyncio.Queue[list[Pulled]] = asyncio.Queue(maxsize=2)
        async with asyncio.TaskGroup() as tg:  # a lander that fails ends this verifier too
            tg.create_task(self._lander(landing, verify))
            while True:
                batch = await self._gather_batch(verify)
                try:
                    later = [posixpath.join(p.row.root, p.row.rel) for p in batch if p.remote_hash is None]
                    remote_hashes = await source.sha256(later) if later else None
                    good = [
                        p
                        for p in batch
                        if await self._verified(
                            source, p, remote_hashes if p.remote_hash is None else await p.remote_hash
                        )
                    ]
                except BaseException:
                    for _ in batch:
                        verify.task_done()
                    raise
                await landing.put(good)
                for _ in range(len(batch) - len(good)):
                    verify.task_done()

    async def _gather_batch(self, verify: asyncio.Queue[Pulled]) -> list[Pulled]:
        """The next item, plus whatever else arrives within VERIFY_WAIT (a daemon) or ONE_PASS_VERIFY_WAIT
        (one pass, while the batch is under ONE_PASS_VERIFY_BYTES): one remote command for many. In one pass, once the transfers are all done nothing
        else can come: the batch goes at once (it waited out VERIFY_WAIT at the end of every `sync --once`
        that pulled anything)."""
        loop = asyncio.get_running_loop()
        batch = [await verify.get()]
        more = self.more_coming
        start = loop.time()
        size = batch[0].row.size
        while len(batch) < VERIFY_BATCH:
            if not verify.empty():
                batch.append(verify.get_nowait())
                size += batch[-1].row.size
                continue
            small = more is not None and size < ONE_PASS_VERIFY_BYTES
            remaining = start + (ONE_PASS_VERIFY_WAIT if small else VERIFY_WAIT) - loop.time()
            if remaining <= 0 or (more is not None and not more()):
                break
            try:  # unlike wait_for (3.11), asyncio.timeout never drops a cancel
                async with asyncio.timeout(remaining if more is None else min(remaining, DONE_CHECK)):
                    batch.append(await verify.get())
                size += batch[-1].row.size
            except TimeoutError:
                continue
        return batch

    async def _lander(self, landing: asyncio.Queue[list[Pulled]], verify: asyncio.Queue[Pulled]) -> None:
        while True:
            batch = await self._gather_landing(landing)
            try:
                await self._land_batch(batch)
            finally:
                for _ in batch:
                    verify.task_done()

    async def _gather_landing(self, landing: asyncio.Queue[list[Pulled]]) -> list[Pulled]:
        """The next verified batch, joined by every batch verified within LAND_GATHER while transfers are
        still running (`more_coming`); once they are done, what is verified lands at once."""
        loop = asyncio.get_running_loop()
        batch = await landing.get()
        deadline = loop.time() + LAND_GATHER
        while True:
            while not landing.empty() and len(batch) < LAND_MOST:
                batch += landing.get_nowait()
            remaining = deadline - loop.time()
            if (
                remaining <= 0
                or len(batch) >= LAND_MOST
                or self.more_coming is None
                or not self.more_coming()
            ):
                return batch
            try:  # in VERIFY_WAIT slices: the transfers may end meanwhile
                async with asyncio.timeout(min(remaining, VERIFY_WAIT)):
                    batch += await landing.get()
            except TimeoutError:
                continue

    async def _verified(self, source: Source, item: Pulled, remote_hashes: dict[str, str] | None) -> bool:
        """True when the remote's own SHA-256 agrees (or the remote cannot hash); else drop the partial.
        A mismatch on a file that is no longer the listed version (size or mtime moved: rewritten while
        it waited or travelled) is a change, taken again once it settles, not the file's failure."""
        if remote_hashes is None:
            return True
        path = posixpath.join(item.row.root, item.row.rel)
        theirs = remote_hashes.get(path)
        if theirs == item.sha256:
            return True
        await asyncio.get_running_loop().run_in_executor(self.executor, self.library.discard, item.partial)
        if theirs is None:
            self.log.info("vanished before verification; will retry if it returns", path=item.row.rel)
            await self.ledger.changed(item.row)
        elif not await source.still_same([(path, item.row.size, item.row.mtime)]):
            self.log.info(
                "rewritten since it was listed; will take it again once it settles", path=item.row.rel
            )
            await self.ledger.changed(item.row)
        else:
            await self.ledger.failed(
                item.row,
                f"sha256 mismatch: remote {theirs[:16]}…, received {item.sha256[:16]}…",
                "verification",
            )
        return False

    async def _land_batch(self, items: list[Pulled]) -> None:
        if not items:
            return
        # The renames and the state DB's record of them finish together even when this task is cancelled
        # (SIGTERM, reload): cut between them, landed files would stay 'transferring' in the DB, and
        # then be released to 'seen' and fetched again.
        landing = asyncio.ensure_future(self._land_and_record(items))
        try:
            errors = await asyncio.shield(landing)
        except asyncio.CancelledError:
            await self._finish_landing(landing)
            raise
        for p, error in zip(items, errors, strict=True):
            if isinstance(error, OSError) and error.errno in LOCAL_FULL:
                await self.ledger.put_back([p.row])  # the library's disk is full: not the file's fault
            elif error is not None:
                await self.ledger.failed(p.row, str(error), "landing")

    async def _finish_landing(self, landing: asyncio.Future[Any]) -> None:
        """After a cancel: wait for the landing to end (a repeated cancel does not stop the wait), and log
        its error, which nobody else will see."""
        while not landing.done():
            try:
                await asyncio.shield(landing)
            except asyncio.CancelledError:
                continue
            except Exception:
                break
        if not landing.cancelled() and landing.exception() is not None:
            self.log.error("landing failed while stopping", error=str(landing.exception()))

    async def _land_and_record(self, items: list[Pulled]) -> list[Exception | None]:
        loop = asyncio.get_running_loop()
        arrivals = [
            Arrival(p.partial, library_rel(self.remote, p.row.rel), p.sha256, p.row.mtime) for p in items
        ]
        place, executor, library = self.place, self.executor, self.library
        dev = place.device(library.root)  # each batch: a library remounted meanwhile is seen as it is now
        async with self.landing_lock:
            plans = await place.run(dev, executor, library.plan_batch, arrivals)
            await self.ledger.intents(
                [
                    (p.row.id, p.sha256, plan.rel)
                    for p, plan in zip(items, plans, strict=True)
                    if isinstance(plan, Plan)
                ]
            )
            await loop.run_in_executor(executor, library.flush_before, plans)
            batch = Renames()
            for start in range(0, len(arrivals), RENAME_SLICE):  # on the loop: a few ms at a time
                end = start + RENAME_SLICE
                await place.run(dev, executor, library.rename, arrivals[start:end], plans[start:end], batch)
            await loop.run_in_executor(executor, library.flush_after, batch)
            errors = batch.results
            await self.ledger.landed(
                [
                    Landed(p.row, p.sha256, plan.rel)
                    for p, plan, error in zip(items, plans, errors, strict=True)
                    if error is None and isinstance(plan, Plan)
                ]
            )
        return errors
