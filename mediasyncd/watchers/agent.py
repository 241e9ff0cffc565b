"""Agent mode: the remote agent's file-complete events become Sightings; poll is the visible fallback.

After the agent's hello, one full listing (reconciliation) takes what is already there; then each batch of
events is a partial Sighting whose files are complete at once (no settle). A full listing runs again when
the agent asks (`rescan`: overflow, lost watch), when it sent something that cannot be trusted, and every
`reconcile_interval`; files a listing finds still settling are listed again once they could have settled.

When the agent cannot run (no python3, no inotify, a blind filesystem, no shell) or is lost (it exited,
its heartbeat stopped), this watcher polls like `PollWatcher` and tries the agent again with backoff
(not before the next connection when it cannot run at all). `mode` and `reason` say which, for /status;
each reason is logged once per remote.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import structlog

from mediasyncd.agent import script as agent_script
from mediasyncd.backoff import Backoff, jittered, sleep_or_wake
from mediasyncd.config import RemoteConfig
from mediasyncd.sources import Key, Listing, RemoteEntry, Source
from mediasyncd.watchers.agent_link import AgentLink, AgentUnavailable, launch
from mediasyncd.watchers.agent_protocol import Bad, Failed, FileDone, Hello, Message, Rescan
from mediasyncd.watchers.base import Pending, Sighting
from mediasyncd.watchers.poll import PollWatcher

HEARTBEAT = 2.0
RETRY = Backoff(base=5.0, cap=300.0)
HEALTHY_AFTER = 60.0  # an agent that ran this long starts the backoff over when it is lost
BAD_LIMIT = 20  # untrustworthy lines from one agent before it is dropped for poll
FLOOD_EVENTS = 20_000  # file events within FLOOD_WINDOW seconds: a listing is cheaper than trusting them
FLOOD_WINDOW = 10.0
MIN_READ = 0.2
WAKE_CHECK = 1.0  # how often agent mode looks whether a listing was asked for (a sync now)


@dataclass
class Reading:
    """What one batch of agent messages asks for. Pure bookkeeping."""

    entries: dict[Key, RemoteEntry] = field(default_factory=dict)
    rescan: str | None = None
    failed: Failed | None = None
    bad: list[Bad] = field(default_factory=list)


def read_batch(messages: list[Message], accepts: Callable[[str], bool]) -> Reading:
    """Sort a batch: complete files that pass the globs (the last event per file wins), the first
    rescan reason, a fatal error, untrusted lines."""
    reading = Reading()
    for msg in messages:
        if isinstance(msg, FileDone):
            if accepts(msg.entry.rel):
                reading.entries[msg.entry.key] = msg.entry
        elif isinstance(msg, Rescan):
            reading.rescan = reading.rescan or msg.reason or "the agent asked"
        elif isinstance(msg, Failed):
            if msg.fatal:
                reading.failed = msg
            else:
                reading.rescan = reading.rescan or msg.reason
        elif isinstance(msg, Bad):
            reading.bad.append(msg)
    return reading


class AgentWatcher:
    """Agent events while the agent runs, polling while it does not."""

    def __init__(
        self,
        source: Source,
        remote: RemoteConfig,
        pending: Pending,
        *,
        script: bytes | None = None,
        heartbeat: float = HEARTBEAT,
        retry: Backoff = RETRY,
        warned: set[str] | None = None,
    ) -> None:
        self.source = source
        self.remote = remote
        self.script = script if script is not None else agent_script()
        self.heartbeat = heartbeat
        self.retry = retry
        self.lister = PollWatcher(source, remote, pending)
        self.mode = "poll"
        self.reason: str | None = "starting the agent"
        self.log = structlog.get_logger("mediasyncd.watch").bind(remote=remote.name)
        self._warned = warned if warned is not None else set()
        self._wake = asyncio.Event()
        self._flood: list[float] = []

    def wake(self) -> None:
        """A listing now (agent mode: at the next check, within a second)."""
        self._wake.set()

    async def sightings(self) -> AsyncIterator[Sighting]:
        attempt = 0
        while True:
            retry = True
            try:
                link, hello = await launch(
                    self.source, self.script, self.remote.roots, settle=self.remote.settle,
                    heartbeat=self.heartbeat,
                )  # fmt: skip
            except AgentUnavailable as exc:
                retry = self._fall_back(exc)
            else:
                up = time.monotonic()
                try:
                    self._agent_up(hello)
                    async for sighting in self._follow(link):
                        yield sighting
                except AgentUnavailable as exc:
                    retry = self._fall_back(exc)
                finally:
                    link.close()
                if time.monotonic() - up >= HEALTHY_AFTER:
                    attempt = 0  # it ran a while: the next loss is retried soon
            deadline = time.monotonic() + self.retry.delay(attempt) if retry else float("inf")
            attempt += 1
            while True:
                yield await self.lister.look()
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                await sleep_or_wake(self._wake, min(self.lister.next_pass_in(), left))

    async def _follow(self, link: AgentLink) -> AsyncIterator[Sighting]:
        """Reconcile, then one Sighting per batch of events; listings where events cannot be trusted."""
        interval = self.remote.reconcile_interval
        yield await self._reconcile("start")
        next_full = time.monotonic() + jittered(interval)
        last_heard = time.monotonic()
        bad = 0
        while True:
            now = time.monotonic()
            due = next_full
            if self.lister.settle.next_in is not None:  # a listing found files still being written
                due = min(due, now + max(self.lister.settle.next_in + 0.05, 0.2))
            # at least a short read: after a long listing, what the agent sent meanwhile is waiting
            wait = max(MIN_READ, min(due - now, last_heard + link.timeout - now, WAKE_CHECK))
            messages = await link.batch(wait)
            now = time.monotonic()
            if self._wake.is_set():
                self._wake.clear()
                yield await self._reconcile("asked")
                next_full = time.monotonic() + jittered(interval)
            if messages is None:
                if now - last_heard >= link.timeout:
                    raise AgentUnavailable(f"no heartbeat from the agent for {link.timeout:.0f}s")
                if now >= next_full:
                    yield await self._reconcile("interval")
                    next_full = time.monotonic() + jittered(interval)
                elif self.lister.settle.next_in is not None:
                    yield await self.lister.look()
                continue
            last_heard = now
            started = time.monotonic()
            reading = read_batch(messages, self.remote.path_filter.accepts)
            for b in reading.bad:
                self._warn_once(
                    f"bad:{b.kind}", "ignoring untrusted agent output", kind=b.kind, detail=b.detail
                )
            bad += len(reading.bad)
            if bad > BAD_LIMIT:
                raise AgentUnavailable(f"the agent sent {bad} lines that cannot be trusted")
            if reading.failed is not None:
                raise AgentUnavailable(reading.failed.reason, retry=reading.failed.retry)
            if reading.entries and self._flooding(now, len(reading.entries)):
                self._warn_once("flood", "agent events flood in; listing instead", limit=FLOOD_EVENTS)
                reading.rescan = reading.rescan or "flood"
                reading.entries.clear()
            if reading.entries:
                yield self._sighting(list(reading.entries.values()), started)
            if reading.rescan is not None or reading.bad:
                yield await self._reconcile(reading.rescan or "untrusted agent output")
                next_full = time.monotonic() + jittered(interval)

    def _sighting(self, entries: list[RemoteEntry], started: float) -> Sighting:
        """Files the agent saw complete: ready at once, nothing settling, not a full listing."""
        return Sighting(
            Listing(entries=entries, method="agent"),
            frozenset(e.key for e in entries),
            full=False,
            seconds=time.monotonic() - started,
            sync_id=uuid.uuid4().hex[:12],
            entries=entries,
        )

    async def _reconcile(self, why: str) -> Sighting:
        level = self.log.debug if why in ("start", "interval") else self.log.info
        level("reconciliation listing", reason=why)
        return await self.lister.look()

    def _flooding(self, now: float, count: int) -> bool:
        self._flood = [t for t in self._flood if now - t < FLOOD_WINDOW]
        self._flood.extend([now] * min(count, FLOOD_EVENTS + 1))
        return len(self._flood) > FLOOD_EVENTS

    def _agent_up(self, hello: Hello) -> None:
        self.mode, self.reason = "agent", None
        self.log.info("agent watching", pid=hello.pid, python=hello.python, agent_version=hello.version)
        if hello.missing:
            self._warn_once(
                "missing", "roots missing on remote", roots=[self.remote.roots[i] for i in hello.missing]
            )

    def _fall_back(self, exc: AgentUnavailable) -> bool:
        """Poll from now on; one warning per reason. True when the agent is worth trying again soon."""
        self.mode, self.reason = "poll", exc.reason
        self._warn_once(f"fallback:{exc.reason}", "agent unavailable; polling instead", reason=exc.reason)
        return exc.retry

    def _warn_once(self, key: str, event: str, **fields: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(event, **fields)
