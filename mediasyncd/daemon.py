"""Daemon lifecycle only: start the parts, serve, reload on SIGHUP, stop on SIGTERM/SIGINT.

Phases: start (lock, state DB, library check, status server, one Puller per remote) -> serve (signals
change state in one place: SIGTERM/SIGINT set `stop`, SIGHUP sets `reload`) -> graceful shutdown bounded
by SHUTDOWN_GRACE seconds, then cancel. The daemon knows nothing about how the parts work.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import structlog

from mediasyncd import __version__
from mediasyncd.config import Config, PurgeConfig, RemoteConfig, TransferConfig, load_config
from mediasyncd.errors import ConfigError
from mediasyncd.lock import StateLock
from mediasyncd.progress import StatusView
from mediasyncd.sdnotify import Notifier
from mediasyncd.state import Store
from mediasyncd.status_server import make_app, start_server
from mediasyncd.transfer.budget import SpaceGate
from mediasyncd.transfer.landing import Library
from mediasyncd.transfer.puller import Puller
from mediasyncd.wiring import Service, consumers, services

SHUTDOWN_GRACE = 10.0
SUPERVISOR_RETRY = 30.0

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

    def __post_init__(self) -> None:
        path = str(self.config.path) if self.config.path else None
        self.view = StatusView(__version__, path)
        self._pullers: dict[str, _Running] = {}
        self._services: list[Service] = []

    async def run(self) -> None:
        cfg = self.config.daemon
        lock = StateLock(cfg.state_dir)
        lock.acquire("run")
        library = Library(cfg.library, self.config.transfer.file_mode, self.config.transfer.dir_mode)
        library.check_available()
        store = Store(cfg.db_path)
        await store.open()
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="io")
        runner = await start_server(make_app(self.view, cfg.status_token), cfg.status_host, cfg.status_port)
        self._install_signals()
        self._make_puller = self._puller_factory(library, store, executor)
        feeds = consumers(self.config, store)
        await store.enable_consumers([c.name for c in feeds])
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                feed_tasks = [tg.create_task(c.run()) for c in feeds]
                for remote in self.config.remotes:
                    self._start(remote)
                self._services = services(self.config, store, self.view)
                service_tasks = [tg.create_task(s.run()) for s in self._services]
                heartbeat = None
                if self.notifier.watchdog_interval:
                    heartbeat = tg.create_task(self._watchdog(self.notifier.watchdog_interval))
                self.notifier.ready(self._summary())
                log.info("started", remotes=[r.name for r in self.config.remotes], listen=cfg.status_listen)
                self.started.set()
                await self._serve()
                self.notifier.stopping()
                log.info("stopping")
                await self._stop_all()
                for t in service_tasks + feed_tasks:
                    t.cancel()
                if heartbeat is not None:
                    heartbeat.cancel()
        finally:
            await runner.cleanup()
            await store.close()
            executor.shutdown(wait=False, cancel_futures=True)
            self._remove_signals()
            lock.release()
            log.info("stopped")

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

    async def _stop_all(self) -> None:
        tasks = [r.task for r in self._pullers.values()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE)

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
        task = self._tg.create_task(self._supervise(puller), name=f"puller-{remote.name}")
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
        return f"syncing {len(self.config.remotes)} remote(s); status on {self.config.daemon.status_listen}"

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.stop.set)
        loop.add_signal_handler(signal.SIGINT, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload.set)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def _settings(remote: RemoteConfig, transfer: TransferConfig) -> tuple[RemoteConfig, TransferConfig]:
    """What a Puller depends on: a change here restarts it; purge settings are the scheduler's."""
    return (replace(remote, purge=PurgeConfig()), transfer)
