"""Third-party sinks from the entry-point group `mediasyncd.sinks`.

An entry point names a factory: `factory(name: str, options: dict) -> Sink` (`open`, `deliver(batch)`,
`close`; see `mediasyncd.sinks.base`). A plugin raising `mediasyncd.sinks.EventRejected` rejects the
batch (poison, found by splitting it); anything else it raises is an outage and retried: it cannot crash
the daemon (even `SystemExit` from a plugin is turned into an error), and a call that hangs past the
sink's `timeout` is an outage too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import entry_points
from typing import Any, TypeVar

from mediasyncd.config_sinks import SinkConfig
from mediasyncd.sinks.base import Envelope, EventRejected, Sink, SinkGone, SinkUnavailable

GROUP = "mediasyncd.sinks"
T = TypeVar("T")


class PluginError(Exception):
    """A plugin failed (or could not be loaded): an outage of that sink."""


def load_plugin(name: str) -> Callable[[str, dict[str, Any]], Sink]:
    found = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not found:
        known = sorted(ep.name for ep in entry_points(group=GROUP))
        raise PluginError(
            f"no sink plugin {name!r} in the entry-point group {GROUP} (installed: {', '.join(known) or 'none'})"
        )
    factory: Callable[[str, dict[str, Any]], Sink] = found[0].load()
    return factory


class PluginSink:
    """A plugin behind a guard: its failures become the courier's outages or rejections."""

    def __init__(self, config: SinkConfig) -> None:
        self.config = config
        self.timeout = config.timeout
        self.plugin: Sink | None = None

    async def open(self) -> None:
        if self.plugin is None:
            factory = await self._guard(lambda: _call(load_plugin, self.config.plugin or ""))
            self.plugin = await self._guard(
                lambda: _call(factory, self.config.name, dict(self.config.options))
            )
        plugin = self.plugin
        await self._guard(plugin.open)

    async def deliver(self, events: Sequence[Envelope]) -> None:
        if self.plugin is None:
            raise PluginError("the plugin is not open")
        plugin = self.plugin
        await self._guard(lambda: plugin.deliver(events))

    async def close(self) -> None:
        if self.plugin is not None:
            plugin = self.plugin
            await self._guard(plugin.close)

    async def _guard(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await call()
        except (EventRejected, SinkGone, SinkUnavailable, PluginError, asyncio.CancelledError):
            raise
        except TimeoutError:
            raise PluginError(f"the plugin did not answer within {self.timeout:g}s") from None
        except BaseException as exc:  # a plugin's bug (or its sys.exit) must not stop the daemon
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise PluginError(f"plugin {self.config.plugin} failed: {type(exc).__name__}: {exc}") from exc


async def _call(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)
