"""One connected source, served: watcher -> (adopter ->) ready queue -> transfer workers -> verifier -> Ledger.

A claimed file whose copy is already at its landing path goes to the adopter first (`adopt`); what it
does not adopt joins the ready queue like any other file.

A session runs until its watcher ends (a one-pass watcher: then the queue drains and the session
returns) or a RemoteError ends it (the connection is gone); either way, everything still in flight goes
back to the Ledger, its partials kept for a resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from concurrent.futures import Executor

from mediasyncd.config import RemoteConfig, TransferConfig
from mediasyncd.errors import RemoteError, StateDiskFull
from mediasyncd.progress import RemoteStatus
from mediasyncd.sources import Source
from mediasyncd.state import FileRow
from mediasyncd.transfer.adopt import Adopter, Copy
from mediasyncd.transfer.budget import SpaceGate
from mediasyncd.transfer.jobs import Job, plan_jobs
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.ledger import Ledger
from mediasyncd.transfer.verify import Backlog, Verifier
from mediasyncd.transfer.workers import Transfers
from mediasyncd.watchers.base import Sighting, Watcher


class Session:
    def __init__(
        self,
        remote: RemoteConfig,
        transfer: TransferConfig,
        source: Source,
        watcher: Watcher,
        ledger: Ledger,
        *,
        library: Library,
        executor: Executor,
        landing_lock: asyncio.Lock,
        space: SpaceGate,
        status: RemoteStatus,
        once: bool = False,
    ) -> None:
        self.remote = remote
        self.transfer = transfer
        self.source = source
        self.watcher = watcher
        self.ledger = ledger
        self.status = status
        self.once = once
        self.passes = 0
        self._burst = ""  # agent mode: the pass that arrivals join while it is open
        self.transfers = Transfers(
            remote.name, source, ledger, library=library, transfer=transfer, executor=executor,
            space=space, status=status, wait_for_space=not once,
        )  # fmt: skip
        self.adopter = Adopter(remote.name, source, library=library, ledger=ledger, executor=executor)
        self.verifier = Verifier(remote.name, library=library, ledger=ledger, executor=executor,
                                 landing_lock=landing_lock)  # fmt: skip

    async def run(self) -> None:
        queue: asyncio.Queue[Job] = asyncio.Queue()
        verify = Backlog()
        adopt: asyncio.Queue[tuple[FileRow, Copy]] = asyncio.Queue()
        if self.once:  # one pass: the whole pull's time counts, not each file's; a daemon lands at once
            self.verifier.more_coming = lambda: bool(
                self.transfers.queued(queue) or self.status.in_flight or not verify.empty()
            )
        try:
            async with asyncio.TaskGroup() as tg:
                workers = [
                    tg.create_task(self.transfers.worker(queue, verify))
                    for _ in range(self.transfer.concurrency)
                ]
                workers.append(tg.create_task(self.verifier.run(self.source, verify)))
                workers.append(tg.create_task(self.adopter.run(adopt, lambda rows: self._queue(rows, queue))))
                await self._watch(queue, adopt)
                await adopt.join()  # a one-pass watcher ended: drain, then stop
                await queue.join()
                await verify.join()
                for w in workers:
                    w.cancel()
        except BaseExceptionGroup as group:
            raise _first_remote_error(group) from None
        finally:
            await self.ledger.release_all()

    async def _watch(self, queue: asyncio.Queue[Job], adopt: asyncio.Queue[tuple[FileRow, Copy]]) -> None:
        """Take each sighting until the watcher ends (one pass: its listing is not kept while the
        transfers run)."""
        sightings = self.watcher.sightings()
        try:
            async for sighting in sightings:
                await self._take(sighting, queue, adopt)
        finally:  # the agent's channel closes now, not when the generator is collected
            aclose = getattr(sightings, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _take(
        self, sighting: Sighting, queue: asyncio.Queue[Job], adopt: asyncio.Queue[tuple[FileRow, Copy]]
    ) -> None:
        if not sighting.full:  # events: a burst of arrivals is one pass until its files are done
            if self._burst and self.ledger.pass_open(self._burst):
                sighting = dataclasses.replace(sighting, sync_id=self._burst)
            self._burst = sighting.sync_id
        self.status.watch_mode = self.watcher.mode
        self.status.watch_reason = getattr(self.watcher, "reason", None)
        rows, candidates = await self.adopter.sort(await self.ledger.admit(sighting, retry_now=self.once))
        for candidate in candidates:
            adopt.put_nowait(candidate)
        jobs = self._queue(rows, queue)
        self.passes += 1
        self.status.settling = self.ledger.counts.settling = sighting.settling
        self.status.last_pass_at = time.time()
        self.status.last_pass_s = sighting.seconds
        self.status.pass_seconds.observe(sighting.seconds)
        self.status.last_pass_result = "ok"
        changed = bool(
            self.ledger.last_new or jobs or candidates or sighting.rejected or sighting.listing.missing_roots
        )
        log = self.ledger.log.info if changed else self.ledger.log.debug  # no line per idle poll at info
        log(
            "pass",
            sync_id=sighting.sync_id,
            listed=len(sighting.entries),
            new=self.ledger.last_new,
            queued=self.status.queued,
            in_library=len(candidates),
            settling=sighting.settling,
            method=sighting.listing.method,
            seconds=round(sighting.seconds, 3),
        )

    def _queue(self, rows: list[FileRow], queue: asyncio.Queue[Job]) -> list[Job]:
        """Claimed rows to the transfer workers, as jobs."""
        caps = self.source.caps
        small_below = max(self.transfer.batch_below, caps.stream_below) if self.transfer.batch_below else 0
        jobs = plan_jobs(
            rows,
            small_below=small_below if (caps.tar and self.source.shell is not None) or caps.batches else 0,
            max_files=self.transfer.batch_files,
            # A share of the byte budget per stream: several streams overlap their remote start-up.
            stream_bytes=max(self.transfer.in_flight // max(caps.streams, 1), 1),
            not_in_batches=self.transfers.not_in_batches,
        )
        for job in jobs:
            queue.put_nowait(job)
        self.status.queued = self.transfers.queued(queue)
        return jobs


# What ends a session without blaming a file: the connection, or a state DB that cannot record anything.
SESSION_ENDERS = (RemoteError, StateDiskFull)


def _first_remote_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """A RemoteError (or a full state DB disk) that ended the session, unwrapped; any other error (a bug)
    as it came."""
    remote_errors = group.subgroup(SESSION_ENDERS)
    if remote_errors is None:
        return group
    rest = group.subgroup(lambda e: not isinstance(e, (*SESSION_ENDERS, BaseExceptionGroup)))
    if rest is not None:
        return group
    first: BaseException = remote_errors
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first
