"""Daemon housekeeping: the event log's retention, applied hourly (and once at start-up)."""

from __future__ import annotations

import asyncio
import time

import structlog

from mediasyncd.config import Config
from mediasyncd.state import Store

EVERY = 3600.0

log = structlog.get_logger("mediasyncd.housekeeping")


class EventRetention:
    """Drops events older than `[daemon] event_retention` that every enabled consumer acknowledged."""

    def __init__(self, config: Config, store: Store, every: float = EVERY) -> None:
        self.keep_for = config.daemon.event_retention
        self.store = store
        self.every = every

    async def run(self) -> None:
        while True:
            dropped = await self.store.prune_events(time.time() - self.keep_for)
            if dropped:
                log.info("event log pruned", dropped=dropped, keep_for_s=self.keep_for)
            await asyncio.sleep(self.every)

    def reload(self, config: Config) -> None:
        self.keep_for = config.daemon.event_retention
