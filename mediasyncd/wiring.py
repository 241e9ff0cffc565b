"""Which optional parts run, wired from the config: consumers of the event log and daemon services.

The daemon and `sync --once` call these; they know nothing about the parts themselves.
"""

from __future__ import annotations

from typing import Protocol

from mediasyncd.config import Config
from mediasyncd.progress import StatusView
from mediasyncd.state import Store


class Service(Protocol):
    """A long-running part of the daemon (e.g. the purge scheduler)."""

    async def run(self) -> None:
        """Serve until cancelled."""

    def reload(self, config: Config) -> None:
        """Adopt a new, already validated config."""


class Consumer(Protocol):
    """Reads the event log from its own acknowledged position (e.g. the media pipeline)."""

    name: str

    async def run(self) -> None: ...

    async def drain(self) -> None:
        """Wait until every event written so far has been read."""


def consumers(config: Config, store: Store, view: StatusView | None = None) -> list[Consumer]:
    """What consumes the event log, in the daemon and in `sync --once` alike (the daemon's `view` gets
    their sections of /status)."""
    found: list[Consumer] = []
    if config.pipeline.enabled:
        from mediasyncd.processing import Processor

        found.append(Processor(config, store, view=view))
    if config.workflow.enabled:
        from mediasyncd.workflow.runner import Workflow

        found.append(Workflow(config, store, view=view))
    return found


def services(config: Config, store: Store, view: StatusView) -> list[Service]:
    """The daemon's long-running parts besides the pullers and the status server."""
    from mediasyncd.housekeeping import EventRetention
    from mediasyncd.memory import HeapTrim
    from mediasyncd.purge.scheduler import PurgeScheduler  # APScheduler: only the daemon needs it
    from mediasyncd.sinks.delivery import SinkDelivery

    return [
        PurgeScheduler(config, store, view),
        EventRetention(config, store),
        SinkDelivery(config, store, view),
        HeapTrim(),
    ]


def consumer_names(config: Config, feeds: list[Consumer]) -> list[str]:
    """Every consumer that holds the event log back at start: the feeds and the enabled sinks (the sinks'
    service then narrows its own to those it runs)."""
    return [*(f.name for f in feeds), *(s.consumer for s in config.sinks if s.enabled)]
