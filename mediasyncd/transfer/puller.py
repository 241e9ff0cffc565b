"""Keeps one remote synced: open its source with backoff, serve a session, and again after a loss.

Connection supervision lives here and nowhere else. The backoff grows across repeated failures and
starts over only after a session that worked: one that landed a file or lasted `healthy_after` seconds. A
remote whose every session fails early (an unreadable root on an SFTP-only host, a proxy that cuts every
large read) is not handshaken with every second. One Puller per remote; a
failure here never reaches another remote's Puller.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path

import structlog

from mediasyncd.backoff import Backoff, sleep_or_wake
from mediasyncd.config import RemoteConfig, TransferConfig
from mediasyncd.errors import HostKeyError, RemoteError, StateDiskFull
from mediasyncd.progress import RemoteStatus
from mediasyncd.sources import Source, open_source
from mediasyncd.state import EventType, NewEvent, Store
from mediasyncd.transfer.budget import SpaceGate
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.ledger import Ledger, PassCounts
from mediasyncd.transfer.session import Session
from mediasyncd.watchers.base import Watcher
from mediasyncd.watchers.local import LocalWatcher
from mediasyncd.watchers.poll import PollWatcher

RECONNECT = Backoff(base=1.0, cap=300.0)
STATE_FREE = 4 << 20  # free bytes on the state DB's disk before a session starts again after it was full
STATE_SPACE_CHECK = 1.0  # seconds between looks at that disk meanwhile
HEALTHY_AFTER = 30.0  # seconds a session must last (or land a file) for the backoff to start over
Opener = Callable[[], Awaitable[Source]]


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
        space: SpaceGate,
        opener: Opener | None = None,
        reconnect: Backoff = RECONNECT,
        healthy_after: float = HEALTHY_AFTER,
    ) -> None:
        self.remote = remote
        self.transfer = transfer
        self.library = library
        self.status = status
        self.status.transport = remote.transport
        self.executor = executor
        self.landing_lock = landing_lock
        self.space = space
        self.ledger = Ledger(remote.name, store, status)
        self.opener = opener or (lambda: open_source(remote, state_dir, transfer))
        self.state_dir = state_dir
        self._state_full: str | None = None  # why the last session ended: the state DB's disk is full
        self.log = structlog.get_logger("mediasyncd.puller").bind(remote=remote.name)
        self.reconnect = reconnect
        self.healthy_after = healthy_after
        self.attempt = 0
        self.failing = False  # a sync_error was recorded and no remote_recovered since
        self._wake = asyncio.Event()
        self._watcher: Watcher | None = None
        self._watch_warned: set[str] = set()  # fallback reasons already logged: one line each
        self._agent_mode = False  # the current watcher is the AgentWatcher

    @property
    def counts(self) -> PassCounts:
        return self.ledger.counts

    async def run(self) -> None:
        """Keep the remote synced until cancelled; reconnect with capped exponential backoff."""
        await self.ledger.load(self.library.root, self.executor)
        self.ledger.watch_purges()
        try:
            while True:
                started, landed = time.monotonic(), self._landed()
                session = await self._serve(once=False)
                worked = self._landed() > landed or time.monotonic() - started >= self.healthy_after
                if session is not None and session.passes and worked:
                    self.attempt = 0  # it worked: the next loss is retried soon
                if self._state_full is not None:
                    await self._wait_for_state_space(self._state_full)
                await self._sleep(self._next_delay())
        finally:
            self.ledger.unwatch_purges()

    def _landed(self) -> int:
        return self.ledger.counts.landed + self.ledger.counts.adopted

    async def sync_once(self) -> PassCounts:
        """One pass, then drain: list, transfer everything complete, and return. Raises RemoteError.
        The diff base loads while the connection is made: for 20,000 known files each takes ~0.1 s on
        loopback, most of it waiting (on the state DB's thread, on the remote's login shell)."""
        self.status.state = "connecting"
        loading = asyncio.create_task(self.ledger.load(self.library.root, self.executor))
        try:
            source = await self.opener()
        except BaseException:
            loading.cancel()
            await asyncio.gather(loading, return_exceptions=True)
            raise
        try:
            await loading
            await self._session(source, once=True).run()
        finally:
            await source.close()
        return self.ledger.counts

    async def _serve(self, *, once: bool) -> Session | None:
        """Open the source and serve a session until it ends; the error is recorded, never raised."""
        self.status.state = "connecting"
        try:
            source = await self.opener()
        except HostKeyError as exc:
            await self._record("error", str(exc))
            self.attempt = max(self.attempt, 30)  # never retried quickly: someone must act
            return None
        except RemoteError as exc:
            await self._record("backoff", str(exc))
            return None
        session = self._session(source, once=once)
        try:
            if self.failing:
                self.failing = False
                await self.ledger.store.append([NewEvent(EventType.REMOTE_RECOVERED, self.remote.name)])
            await session.run()
        except (RemoteError, StateDiskFull) as exc:
            if isinstance(exc, StateDiskFull):
                self._state_full = str(exc)
            await self._record("backoff", str(exc))
        finally:
            await source.close()
        return session

    def _session(self, source: Source, *, once: bool) -> Session:
        self.status.state = "connected"
        self.status.last_error = None
        caps = source.caps
        self.status.capabilities = caps.summary
        self.status.round_trip_ms = None if caps.round_trip is None else round(caps.round_trip * 1000, 3)
        self.log.info("connected", capabilities=caps.summary, round_trip_ms=self.status.round_trip_ms)
        watcher = self._watcher_for(source, once=once)
        self._watcher = watcher
        self.ledger.on_changed = watcher.wake if self._agent_mode else None
        self.status.watch_mode = watcher.mode
        self.status.watch_reason = getattr(watcher, "reason", None)
        return Session(
            self.remote, self.transfer, source, watcher, self.ledger, library=self.library,
            executor=self.executor, landing_lock=self.landing_lock, space=self.space, status=self.status,
            once=once,
        )  # fmt: skip

    def _watcher_for(self, source: Source, *, once: bool) -> Watcher:
        """The agent where the remote's watch mode asks for it and the transport can run it, else poll;
        local folders are watched with watchfiles. The agent's modules are imported only here (a
        `sync --once` never needs them)."""
        self._agent_mode = False
        if self.remote.transport == "local":
            return LocalWatcher(source, self.remote, self.ledger.pending, once=once)
        if once:
            return PollWatcher(source, self.remote, self.ledger.pending, once=True)
        if self.remote.watch == "poll":
            return PollWatcher(
                source, self.remote, self.ledger.pending, reason='watch = "poll" in the config'
            )
        from mediasyncd.watchers.agent import AgentWatcher
        from mediasyncd.watchers.agent_link import spawner_of

        if spawner_of(source) is None:
            reason = (
                f"the agent does not run over transport {self.remote.transport!r} yet"
                if self.remote.transport != "ssh"
                else "the transport cannot run the agent (no shell)"
            )
            if reason not in self._watch_warned:
                self._watch_warned.add(reason)
                self.log.warning("agent unavailable; polling instead", reason=reason)
            return PollWatcher(source, self.remote, self.ledger.pending, reason=reason)
        self._agent_mode = True  # a listing that finds a newer version wakes it (Ledger.on_changed)
        return AgentWatcher(source, self.remote, self.ledger.pending, warned=self._watch_warned)

    def _next_delay(self) -> float:
        delay = self.reconnect.delay(self.attempt)
        self.attempt += 1
        if self.status.state in ("backoff", "error"):
            self.status.last_error = f"{self.status.last_error} (retrying in {delay:.0f}s)"
            self.log.warning("remote unavailable", error=self.status.last_error, state=self.status.state)
        return delay

    async def _record(self, state: str, message: str) -> None:
        """The remote is unavailable; the first failure since it last worked is a `sync_error` event."""
        self.status.state = "error" if state == "error" else "backoff"
        self.status.last_error = message
        if not self.failing:
            self.failing = True
            data = {"state": self.status.state, "error": message}
            try:
                await self.ledger.store.append([NewEvent(EventType.SYNC_ERROR, self.remote.name, data=data)])
            except StateDiskFull:
                self.failing = False  # not recorded: the next failure tries again
                self.log.warning("state DB disk full; sync_error not recorded", error=message)

    async def _wait_for_state_space(self, reason: str) -> None:
        """The state DB's disk was full: transfers stay paused, saying why in /status, until it has room
        again (nothing could be recorded meanwhile: a new session would only fail the same way)."""
        self._state_full = None
        self.status.paused = f"{reason} (paused until {STATE_FREE >> 20} MiB are free there)"
        self.log.warning("transfers paused: state DB disk full", reason=reason)
        try:
            while await asyncio.to_thread(_free_bytes, self.state_dir) < STATE_FREE:
                await self._sleep(STATE_SPACE_CHECK)
        finally:
            self.status.paused = None
        self.log.info("state DB disk has space again; transfers resume")

    def wake(self) -> None:
        """A pass now: the watcher looks again, or a remote in backoff is retried at once."""
        if self.status.state == "connected" and self._watcher is not None:
            self._watcher.wake()
        else:
            self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        await sleep_or_wake(self._wake, seconds)


def _free_bytes(path: Path) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 0
