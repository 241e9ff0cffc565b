"""The daemon's sinks: one supervised Courier per enabled sink of the current config.

A sink seen for the first time is back-filled before its courier starts. SIGHUP (`reload`) stops the
couriers of removed or changed sinks and starts added or changed ones; positions live in the state DB,
so nothing is lost. Only the sinks running (enabled, not disabled by a 410) hold the event log back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from mediasyncd.backoff import Backoff
from mediasyncd.config import Config
from mediasyncd.config_sinks import SinkConfig
from mediasyncd.progress import StatusView
from mediasyncd.sinks.base import Sink
from mediasyncd.sinks.courier import OUTAGE, REJECTED, Courier
from mediasyncd.sinks.registry import make_sink
from mediasyncd.sinks.status import SinkStatus
from mediasyncd.state import Store
from mediasyncd.state.sinks import SinkLedger
from mediasyncd.supervision import restarting

log = structlog.get_logger("mediasyncd.sinks")

RESTART = Backoff(base=1.0, cap=60.0)


class SinkDelivery:
    """A daemon service (wiring.Service): runs the couriers, follows reloads, feeds `/status`."""

    def __init__(
        self,
        config: Config,
        store: Store,
        view: StatusView | None = None,
        make: Callable[[SinkConfig], Sink] = make_sink,
        outage: Backoff = OUTAGE,
        rejected: Backoff = REJECTED,
    ) -> None:
        self.outage, self.rejected = outage, rejected
        self.store = store
        self.ledger = SinkLedger(store)
        self.make = make
        self.retention = config.daemon.event_retention
        self.wanted = _enabled(config)
        self.statuses: dict[str, SinkStatus] = {}
        self.couriers: dict[str, Courier] = {}
        self._running: dict[str, tuple[SinkConfig, asyncio.Task[None]]] = {}
        self._changed = asyncio.Event()
        self._warned_lag: set[str] = set()
        if view is not None:
            view.sections["sinks"] = self.snapshot

    def reload(self, config: Config) -> None:
        self.wanted = _enabled(config)
        self.retention = config.daemon.event_retention
        self._changed.set()

    def snapshot(self) -> list[dict[str, object]]:
        now = time.time()
        out = []
        for name, status in self.statuses.items():
            shown = status.snapshot(now)
            if shown["lag_s"] > self.retention:
                shown["warning"] = "lag passes the event retention: events may leave the log before delivery"
                if name not in self._warned_lag:
                    self._warned_lag.add(name)
                    log.warning("sink lags behind more than the event retention", sink=name)
            out.append(shown)
        return out

    async def run(self) -> None:
        try:
            while True:
                self._changed.clear()
                await self._apply()
                await self._changed.wait()
        finally:
            tasks = [task for _, task in self._running.values()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _apply(self) -> None:
        for name, (cfg, task) in list(self._running.items()):
            if self.wanted.get(name) != cfg or task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                del self._running[name]
                self.couriers.pop(name, None)
                if name not in self.wanted:
                    self.statuses.pop(name, None)
                    log.info("sink removed", sink=name)
        for name, cfg in self.wanted.items():
            if name in self._running:
                continue
            status = self.statuses.setdefault(name, SinkStatus(name, cfg.type))
            status.type = cfg.type
            reason = await self.ledger.gone(name, cfg.fingerprint())
            if reason is not None:
                status.state, status.last_error = "disabled", reason
                continue
            made = await self.ledger.backfill(name)
            if made:
                log.info(
                    "sink back-filled with the landed files the log no longer holds", sink=name, events=made
                )
            status.state, status.last_error = "ok", None
            task = asyncio.get_running_loop().create_task(self._supervise(cfg, status), name=f"sink-{name}")
            self._running[name] = (cfg, task)
            log.info("sink started", sink=name, type=cfg.type)
        await self.ledger.enable(list(self._running))

    async def _supervise(self, cfg: SinkConfig, status: SinkStatus) -> None:
        """A bug in a courier (or a plugin escaping its guard) restarts it; the daemon goes on."""

        async def deliver() -> None:
            courier = Courier(
                cfg, self.make(cfg), self.store, status, self._changed.set, self.outage, self.rejected
            )
            self.couriers[cfg.name] = courier
            await courier.run()

        def crashed(exc: Exception, delay: float) -> None:
            status.state, status.last_error = "error", f"internal error: {exc}"[:500]
            log.exception("sink crashed; restarting it", sink=cfg.name, retry_in_s=round(delay, 1))

        await restarting(deliver, RESTART, crashed)


def _enabled(config: Config) -> dict[str, SinkConfig]:
    return {s.name: s for s in config.sinks if s.enabled}
