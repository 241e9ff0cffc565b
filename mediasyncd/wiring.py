"""Which optional parts run, wired from the config: consumers of landed files and daemon services.

The daemon and `sync --once` call these; they know nothing about the parts themselves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from mediasyncd.config import Config
from mediasyncd.progress import StatusView
from mediasyncd.puller import LandedHook
from mediasyncd.state import Store


class Service(Protocol):
    """A long-running part of the daemon (e.g. the purge scheduler)."""

    async def run(self) -> None:
        """Serve until cancelled."""

    def reload(self, config: Config) -> None:
        """Adopt a new, already validated config."""


@asynccontextmanager
async def landed_hooks(config: Config) -> AsyncIterator[list[LandedHook]]:
    """Start the consumers of landed files for the lifetime of a run; yield their hooks."""
    hooks: list[LandedHook] = []
    yield hooks


def services(config: Config, store: Store, view: StatusView) -> list[Service]:
    """The daemon's long-running parts besides the pullers and the status server."""
    return []
