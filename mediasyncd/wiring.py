"""What happens after a file lands, wired from the config: the parts that consume landed files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mediasyncd.config import Config
from mediasyncd.puller import LandedHook


@asynccontextmanager
async def landed_hooks(config: Config) -> AsyncIterator[list[LandedHook]]:
    """Start the consumers of landed files for the lifetime of a run; yield their hooks."""
    hooks: list[LandedHook] = []
    yield hooks
