"""Local folders: `watchfiles` (its Rust notify backend) says at once that something changed under a root,
and a listing decides what: the settle rule of poll mode applies, since a local writer's close is not
observable through watchfiles. The periodic listing of poll mode runs anyway as the reconciliation
(events can be lost: a queue overflow, a share whose writes happen elsewhere).

A root that is missing is not watched; the watch starts over whenever the set of existing roots changes
(an unmounted share comes back).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import structlog

from mediasyncd.config import RemoteConfig
from mediasyncd.sources import Source
from mediasyncd.watchers.base import Pending, Sighting
from mediasyncd.watchers.poll import PollWatcher

DEBOUNCE_MS = 50  # changes gathered this long into one wake-up
STEP_MS = 20
ROOTS_CHECK_S = 2.0  # how often the roots are checked for having vanished or come back


class LocalWatcher:
    """A PollWatcher woken by filesystem events."""

    mode = "watchfiles"

    def __init__(self, source: Source, remote: RemoteConfig, pending: Pending, *, once: bool = False) -> None:
        self.poll = PollWatcher(source, remote, pending, once=once)
        self.remote = remote
        self.once = once
        self.events = 0  # change batches seen (for tests and the log)
        self.log = structlog.get_logger("mediasyncd.watch").bind(remote=remote.name)
        self._restart = asyncio.Event()
        self._watched: tuple[str, ...] = ()

    def wake(self) -> None:
        self.poll.wake()

    async def sightings(self) -> AsyncIterator[Sighting]:
        if self.once:  # one pass: nothing to watch for
            async for sighting in self.poll.sightings():
                yield sighting
            return
        helpers = [asyncio.create_task(self._watch()), asyncio.create_task(self._check_roots())]
        for task in helpers:
            task.add_done_callback(self._crashed)
        try:
            async for sighting in self.poll.sightings():
                yield sighting
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def _crashed(self, task: asyncio.Task[None]) -> None:
        """A helper that failed (a bug): said loudly; the periodic listing goes on without it."""
        if not task.cancelled() and task.exception() is not None:
            self.log.error(
                "local watch failed; listing on the poll interval only", error=repr(task.exception())
            )

    async def _existing(self) -> tuple[str, ...]:
        roots = self.remote.roots
        return await asyncio.to_thread(lambda: tuple(r for r in roots if os.path.isdir(r)))

    async def _watch(self) -> None:
        """Watch the existing roots; every change wakes the poll watcher."""
        from watchfiles import awatch  # the Rust extension loads only where a local remote runs

        while True:
            self._restart.clear()
            self._watched = await self._existing()
            if not self._watched:
                await self._restart.wait()
                continue
            try:
                async for _changes in awatch(
                    *self._watched, stop_event=self._restart, debounce=DEBOUNCE_MS, step=STEP_MS,
                    recursive=True,
                ):  # fmt: skip
                    self.events += 1
                    self.poll.wake()
            except (OSError, RuntimeError) as exc:  # watchfiles raises these when notify fails
                self.log.warning("watchfiles failed; listing on the poll interval", error=str(exc))
                await self._restart.wait()

    async def _check_roots(self) -> None:
        """A root that vanished or came back restarts the watch, and a listing is made at once."""
        while True:
            await asyncio.sleep(ROOTS_CHECK_S)
            if await self._existing() != self._watched:
                self._restart.set()
                self.poll.wake()
