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
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from mediasyncd import __version__, discovery
from mediasyncd.backoff import Backoff
from mediasyncd.config import Config, PurgeConfig, RemoteConfig, TransferConfig, is_loopback, load_config
from mediasyncd.control import DaemonControl
from mediasyncd.errors import ConfigError, StartupError
from mediasyncd.lock import StateLock
from mediasyncd.metrics import metrics_handler
from mediasyncd.progress import StatusView
from mediasyncd.purge.scheduler import PurgeScheduler
from mediasyncd.sdnotify import Notifier
from mediasyncd.state import Store
from mediasyncd.status_server import make_app, start_server
from mediasyncd.transfer.budget import SpaceGate
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.puller import Puller
from mediasyncd.wiring import Consumer, Service, consumer_names, consumers, services
from mediasyncd.workflow.runner import Workflow

SHUTDOWN_GRACE = 10.0
LIBRARY_CHECK_S = 5.0  # how often a missing library is looked for again
SUPERVISOR_RETRY = 30.0
RESTART = Backoff(base=1.0, cap=60.0)  # a crashed part (pipeline, purge scheduler, ...) is restarted
EXIT_FORCED = 1

log = structlog.get_logger("mediasyncd.daemon")


@dataclass
class _Running:
    settings: tuple[RemoteConfig, TransferConfig]
    task: asyncio.Task[None]
    puller: Puller


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
        self._pullers: dict[str, _Running] = {}
        self._services: list[Service] = []
        self._feeds: list[Consumer] = []
        self._parts: set[asyncio.Task[None]] = set()
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
            lambda: {name: running.puller for name, running in self._pullers.items()},
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
        self._make_puller = self._puller_factory(library, store, executor)
        try:
            self._spawn("start", lambda: self._start_work(library, store))
            interval = self.notifier.watchdog_interval
            if interval:
                self._spawn("watchdog", lambda: self._watchdog(interval))
            found = discovery.write(cfg.state_dir, cfg.status_host, cfg.status_port, __version__)
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

    async def _start_work(self, library: Library, store: Store) -> None:
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
            self._spawn(f"consumer-{feed.name}", feed.run)
        for remote in self.config.remotes:
            self._start(remote)
        self._services = services(self.config, store, self.view)
        for service in self._services:
            self._spawn(f"service-{type(service).__name__}", service.run)
        self.working = True

    async def _shutdown(self) -> None:
        """Cancel every part and wait for them, at most SHUTDOWN_GRACE seconds or until a second
        SIGTERM/SIGINT; what is still running then is named in the log and left behind."""
        jobs = [j.task for j in self._control.jobs.all() if j.task is not None] if self._control else []
        tasks = [*self._parts, *(r.task for r in self._pullers.values()), *jobs]
        for t in tasks:
            t.cancel()
        force = asyncio.ensure_future(self.force.wait())
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace  # one bound for the whole stop
        try:
            while not force.done() and any(not t.done() for t in tasks) and loop.time() < deadline:
                left = [t for t in tasks if not t.done()]
                await asyncio.wait(
                    [*left, force], timeout=deadline - loop.time(), return_when=asyncio.FIRST_COMPLETED
                )
        finally:
            force.cancel()
        stuck = sorted(t.get_name() for t in tasks if not t.done())
        if stuck:
            self.forced = True
            log.error(
                "shutdown did not finish in time; stopping anyway", grace_s=self.grace, still_running=stuck
            )

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a part under supervision: a crash is logged and the part restarted with backoff; the
        remotes and the other parts go on."""
        task = asyncio.get_running_loop().create_task(self._supervised(name, run), name=name)
        self._parts.add(task)
        task.add_done_callback(self._parts.discard)

    async def _supervised(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                await run()
                return
            except Exception:
                if time.monotonic() - started >= RESTART.cap:
                    attempt = 0  # it ran a good while: not a crash loop
                delay = RESTART.delay(attempt)
                attempt += 1
                log.exception("part crashed; restarting it", part=name, retry_in_s=round(delay, 1))
                await asyncio.sleep(delay)

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
        wanted = {r.name: r for r in new.remotes}
        for name in list(self._pullers):
            if name not in wanted:
                await self._stop_one(name)
                self.view.remotes.pop(name, None)
                log.info("remote removed", remote=name)
        self.config = new
        if not self.working:  # still starting, or waiting for the library: the parts start with this config
            log.info("reloaded before the remotes started", remotes=list(wanted))
            self.notifier.ready(self._summary())  # systemd waits for READY=1 after RELOADING=1
            return
        for service in self._services:
            service.reload(new)
        for remote in new.remotes:
            running = self._pullers.get(remote.name)
            if running and running.settings == _settings(remote, new.transfer):
                continue
            if running:
                await self._stop_one(remote.name)
                log.info("remote changed; restarting it", remote=remote.name)
            else:
                log.info("remote added", remote=remote.name)
            self._start(remote)
        self.notifier.ready(self._summary())
        log.info("reloaded", remotes=list(wanted))

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

    def _start(self, remote: RemoteConfig) -> None:
        puller = self._make_puller(remote)
        task = asyncio.get_running_loop().create_task(self._supervise(puller), name=f"puller-{remote.name}")
        self._pullers[remote.name] = _Running(_settings(remote, self.config.transfer), task, puller)

    async def _stop_one(self, name: str) -> None:
        running = self._pullers.pop(name)
        running.task.cancel()
        await asyncio.wait({running.task}, timeout=SHUTDOWN_GRACE)

    async def _supervise(self, puller: Puller) -> None:
        """A bug while serving one remote is logged and that remote restarted; the others go on."""
        while True:
            try:
                await puller.run()
            except Exception:
                log.exception("remote crashed; restarting it", remote=puller.remote.name)
                puller.status.state = "error"
                puller.status.last_error = "internal error (see the log); restarting"
                await asyncio.sleep(SUPERVISOR_RETRY)
                puller = self._make_puller(puller.remote)
                self._pullers[puller.remote.name].puller = puller

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


def _settings(remote: RemoteConfig, transfer: TransferConfig) -> tuple[RemoteConfig, TransferConfig]:
    """What a Puller depends on: a change here restarts it; purge settings are the scheduler's."""
    return (replace(remote, purge=PurgeConfig()), transfer)


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
