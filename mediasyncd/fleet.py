"""The remotes being served: one Puller per remote, each restarted after a bug while the others go on;
a reload stops the removed remotes and restarts only the ones whose settings changed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import structlog

from mediasyncd.backoff import Backoff
from mediasyncd.config import PurgeConfig, RemoteConfig, TransferConfig
from mediasyncd.supervision import restarting
from mediasyncd.transfer.puller import Puller

REMOTE_RESTART = Backoff(base=30.0, cap=30.0)  # a remote that hit a bug is tried again after 15–30 s
STOP_GRACE = 10.0

log = structlog.get_logger("mediasyncd.daemon")

Settings = tuple[RemoteConfig, TransferConfig]


@dataclass
class _Running:
    settings: Settings
    task: asyncio.Task[None]
    puller: Puller


class Fleet:
    def __init__(self, make: Callable[[RemoteConfig], Puller]) -> None:
        self._make = make
        self._running: dict[str, _Running] = {}

    def pullers(self) -> dict[str, Puller]:
        return {name: running.puller for name, running in self._running.items()}

    def tasks(self) -> list[asyncio.Task[None]]:
        return [r.task for r in self._running.values()]

    def start(self, remote: RemoteConfig, transfer: TransferConfig) -> None:
        name = remote.name

        async def serve() -> None:
            await self._running[name].puller.run()

        def crashed(_exc: Exception, delay: float) -> None:
            """Logged; the remote shows the error until a fresh Puller starts."""
            log.exception("remote crashed; restarting it", remote=name, retry_in_s=round(delay, 1))
            running = self._running[name]
            running.puller.status.state = "error"
            running.puller.status.last_error = "internal error (see the log); restarting"
            running.puller = self._make(remote)

        puller = self._make(remote)
        task = asyncio.get_running_loop().create_task(
            restarting(serve, REMOTE_RESTART, crashed), name=f"puller-{name}"
        )  # `serve` first runs after this entry exists
        self._running[name] = _Running(settings(remote, transfer), task, puller)

    async def stop(self, name: str) -> None:
        running = self._running.pop(name)
        running.task.cancel()
        await asyncio.wait({running.task}, timeout=STOP_GRACE)

    async def remove_missing(self, wanted: Iterable[str]) -> list[str]:
        """Stop the remotes not in `wanted`; returns their names."""
        keep = set(wanted)
        removed = [name for name in self._running if name not in keep]
        for name in removed:
            await self.stop(name)
            log.info("remote removed", remote=name)
        return removed

    async def apply(self, remotes: Iterable[RemoteConfig], transfer: TransferConfig) -> None:
        """Start the new remotes and restart those whose settings changed; the others go on."""
        for remote in remotes:
            running = self._running.get(remote.name)
            if running and running.settings == settings(remote, transfer):
                continue
            if running:
                await self.stop(remote.name)
                log.info("remote changed; restarting it", remote=remote.name)
            else:
                log.info("remote added", remote=remote.name)
            self.start(remote, transfer)


def settings(remote: RemoteConfig, transfer: TransferConfig) -> Settings:
    """What a Puller depends on: a change here restarts it; purge settings are the scheduler's."""
    return (replace(remote, purge=PurgeConfig()), transfer)
