"""Daemon lifecycle only: start the parts, serve, reload on SIGHUP, stop on SIGTERM/SIGINT.

Phases: start (lock, state DB, library check, status server, one Puller per remote) -> serve (signals
change state in one place: SIGTERM/SIGINT set `stop`, SIGHUP sets `reload`) -> graceful shutdown bounded
by SHUTDOWN_GRACE seconds, then cancel. The daemon knows nothing about how the parts work.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from mediasyncd import __version__, discovery
from mediasyncd.config import Config, RemoteConfig, is_loopback, load_config
from mediasyncd.control import DaemonControl
from mediasyncd.errors import ConfigError, StartupError
from mediasyncd.fleet import Fleet
from mediasyncd.lock import StateLock
from mediasyncd.metrics import metrics_handler
from mediasyncd.progress import StatusView
from mediasyncd.purge.scheduler import PurgeScheduler
from mediasyncd.sdnotify import Notifier
from mediasyncd.state import Store
from mediasyncd.status_server import make_app, start_server
from mediasyncd.supervision import Parts, stop_within
from mediasyncd.transfer.budget import SpaceGate
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.puller import Puller
from mediasyncd.wiring import Consumer, Service, consumer_names, consumers, services
from mediasyncd.workflow.runner import Workflow

SHUTDOWN_GRACE = 10.0
LIBRARY_CHECK_S = 5.0  # how often a missing library is looked for again
EXIT_FORCED = 1

log = structlog.get_logger("mediasyncd.daemon")


@dataclass
class Daemon:
    config: Config
    notifier: Notifier = field(default_factory=Notifier)
    view: StatusView = field(init=False)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    reload: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    force: asyncio.Event = field(default_factory=asyncio.Event)
    grace: float = SHUTDOWN_GRACE
    exit_when_forced: bool = False  # the CLI's `run`: a forced stop ends the process at once
    library_check_every: float = LIBRARY_CHECK_S

    def __post_init__(self) -> None:
        path = str(self.config.path) if self.config.path else None
        self.view = StatusView(__version__, path)
        self._fleet: Fleet | None = None
        self._services: list[Service] = []
        self._feeds: list[Consumer] = []
        self._parts = Parts()
        self._control: DaemonControl | None = None
        self.forced = False
        self.working = False  # the library was there and the remotes started
        self.library_problem: str | None = None
        self.view.sections["sinks"] = list  # until the sinks start (after the library is there)
        self.view.sections["library"] = lambda: {
            "path": str(self.config.daemon.library),
            "available": self.library_problem is None,
            "reason": self.library_problem,
        }

    async def run(self) -> None:
        cfg = self.config.daemon
        lock = StateLock(cfg.state_dir)
        lock.acquire("run")
        library = Library(cfg.library, self.config.transfer.file_mode, self.config.transfer.dir_mode)
        store = Store(cfg.db_path)
        try:
            await store.open()
        except BaseException:
            lock.release()
            raise
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")
        control = DaemonControl(
            lambda: self.config,
            lambda: self._fleet.pullers() if self._fleet else {},
            lambda: next((s for s in self._services if isinstance(s, PurgeScheduler)), None),
            self.view,
            store,
            lambda: next((f for f in self._feeds if isinstance(f, Workflow)), None),
        )
        self._control = control
        app = make_app(
            self.view,
            cfg.status_token,
            control,
            loopback_bind=is_loopback(cfg.status_host),
            metrics=metrics_handler(self.view),
            metrics_public=cfg.metrics_public,
        )
        try:
            runner = await start_server(app, cfg.status_host, cfg.status_port)
        except OSError as exc:
            await store.close()
            executor.shutdown(wait=False)
            lock.release()
            raise StartupError(listen_problem(cfg.status_listen, exc)) from None
        found: Path | None = None
        self._install_signals()
        fleet = self._fleet = Fleet(self._puller_factory(library, store, executor))
        try:
            self._parts.spawn("start", lambda: self._start_work(library, store, fleet))
            interval = self.notifier.watchdog_interval
            if interval:
                self._parts.spawn("watchdog", lambda: self._watchdog(interval))
            found = discovery.try_write(cfg.state_dir, cfg.status_host, cfg.status_port, __version__)
            self.notifier.ready(self._summary())
            log.info("started", remotes=[r.name for r in self.config.remotes], listen=cfg.status_listen)
            for warning in self.config.warnings:
                log.warning("config warning", problem=warning)
            self.started.set()
            await self._serve()
            self.notifier.stopping()
            log.info("stopping")
            if found is not None:
                discovery.remove(found)
            await runner.cleanup()  # no new requests (and jobs) while the parts stop
            await self._shutdown()
        finally:
            if found is not None:
                discovery.remove(found)
            await runner.cleanup()
            if not self.forced:
                await store.close()
            executor.shutdown(wait=False, cancel_futures=True)
            self._remove_signals()
            lock.release()
            log.info("stopped", forced=self.forced)
        if self.forced and self.exit_when_forced:
            os._exit(EXIT_FORCED)  # parts stuck in threads (a hung NAS) would hold up the interpreter's exit

    async def _start_work(self, library: Library, store: Store, fleet: Fleet) -> None:
        """Wait for the library (a NAS may mount after the daemon starts: the status server answers and
        says why nothing moves), then start the consumers, one Puller per remote and the services."""
        landed_before = (await store.totals()).landed_files
        problem = await asyncio.to_thread(library.problem, landed_before)
        if problem is not None:
            log.warning("library unavailable; waiting for it, nothing is transferred", reason=problem)
        while problem is not None:
            self.library_problem = problem
            self.notifier.ready(self._summary())
            for remote in self.config.remotes:
                self.view.remote(remote.name).paused = problem
            await asyncio.sleep(self.library_check_every)
            problem = await asyncio.to_thread(library.problem, landed_before)
        await asyncio.to_thread(library.check_available, landed_before)
        if self.library_problem is not None:
            log.info("library available; starting", library=str(library.root))
            self.library_problem = None
            for remote in self.config.remotes:
                self.view.remote(remote.name).paused = None
            self.notifier.ready(self._summary())
        feeds = consumers(self.config, store, self.view)
        self._feeds = feeds
        await store.enable_consumers(consumer_names(self.config, feeds))
        for feed in feeds:
            self._parts.spawn(f"consumer-{feed.name}", feed.run)
        await fleet.apply(self.config.remotes, self.config.transfer)
        self._services = services(self.config, store, self.view)
        for service in self._services:
            self._parts.spawn(f"service-{type(service).__name__}", service.run)
        self.working = True

    async def _shutdown(self) -> None:
        """Cancel every part and wait for them, at most SHUTDOWN_GRACE seconds or until a second
        SIGTERM/SIGINT; what is still running then is named in the log and left behind."""
        jobs = [j.task for j in self._control.jobs.all() if j.task is not None] if self._control else []
        remotes = self._fleet.tasks() if self._fleet else []
        stuck = await stop_within([*self._parts.tasks, *remotes, *jobs], self.grace, self.force)
        if stuck:
            self.forced = True
            log.error(
                "shutdown did not finish in time; stopping anyway", grace_s=self.grace, still_running=stuck
            )

    # -------------------------------------------------------------------------------- phases

    async def _serve(self) -> None:
        while not self.stop.is_set():
            stop = asyncio.ensure_future(self.stop.wait())
            reload = asyncio.ensure_future(self.reload.wait())
            await asyncio.wait({stop, reload}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            reload.cancel()
            if self.reload.is_set() and not self.stop.is_set():
                self.reload.clear()
                await self._reload()

    async def _reload(self) -> None:
        self.notifier.reloading()
        path = self.config.path
        try:
            if path is None:
                raise ConfigError(["no config file to reload"])
            new = await asyncio.to_thread(load_config, path)
        except ConfigError as exc:
            log.error("reload rejected; keeping the running config", problems=exc.problems)
            self.notifier.ready(self._summary() + " (last reload rejected)")
            return
        if new.daemon != self.config.daemon or new.pipeline != self.config.pipeline:
            log.warning("[daemon] and [pipeline] changes take effect after a restart")
            new = replace(new, daemon=self.config.daemon, pipeline=self.config.pipeline)
        wanted = [r.name for r in new.remotes]
        if self._fleet is not None:
            for name in await self._fleet.remove_missing(wanted):
                self.view.remotes.pop(name, None)
        self.config = new
        if not self.working:  # still starting, or waiting for the library: the parts start with this config
            log.info("reloaded before the remotes started", remotes=list(wanted))
            self.notifier.ready(self._summary())  # systemd waits for READY=1 after RELOADING=1
            return
        for service in self._services:
            service.reload(new)
        self._reload_workflow(new)
        if self._fleet is not None:
            await self._fleet.apply(new.remotes, new.transfer)
        self.notifier.ready(self._summary())
        log.info("reloaded", remotes=list(wanted))

    def _reload_workflow(self, new: Config) -> None:
        flows = [f for f in self._feeds if isinstance(f, Workflow)]
        for flow in flows:
            flow.reload(new)
        if new.workflow.enabled and not flows:
            log.warning("[workflow] was off at start: turning it on takes a restart")

    # -------------------------------------------------------------------------------- pullers

    def _puller_factory(
        self, library: Library, store: Store, executor: ThreadPoolExecutor
    ) -> Callable[[RemoteConfig], Puller]:
        landing_lock = asyncio.Lock()
        space = SpaceGate(library.free_bytes, self.config.daemon.library_min_free)

        def make(remote: RemoteConfig) -> Puller:
            return Puller(
                remote,
                self.config.transfer,
                library=library,
                store=store,
                status=self.view.remote(remote.name),
                state_dir=self.config.daemon.state_dir,
                executor=executor,
                landing_lock=landing_lock,
                space=space,
            )

        return make

    # -------------------------------------------------------------------------------- systemd

    async def _watchdog(self, interval: float) -> None:
        """Heartbeat from the event loop itself: if the loop stalls, systemd notices."""
        while True:
            self.notifier.watchdog()
            await asyncio.sleep(interval)

    def _summary(self) -> str:
        if self.library_problem is not None:
            return f"waiting for the library: {self.library_problem}"
        return f"syncing {len(self.config.remotes)} remote(s); status on {self.config.daemon.status_listen}"

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal)
        loop.add_signal_handler(signal.SIGINT, self._on_stop_signal)
        loop.add_signal_handler(signal.SIGHUP, self.reload.set)

    def _on_stop_signal(self) -> None:
        """The first SIGTERM/SIGINT starts a graceful stop; a second one cuts it short."""
        if self.stop.is_set():
            self.force.set()
        self.stop.set()

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def listen_problem(listen: str, exc: OSError) -> str:
    """One line that says why the status server cannot listen, and what to do."""
    port = listen.rsplit(":", 1)[-1]
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {listen}: another program uses that port (`ss -ltnp 'sport = :{port}'` shows "
            "which); set [daemon] status_listen to a free address (or stop the other program)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {listen}: no such address on this machine; check [daemon] status_listen"
    return f"cannot listen on {listen}: {exc.strerror or exc}; check [daemon] status_listen"
