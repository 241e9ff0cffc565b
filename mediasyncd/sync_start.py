"""A one-pass `sync` started as early as it can be: each remote's connection begins before the rest of
the pass's modules import, and they import on a thread while the remote works.

A nothing-new `sync --once` over loopback spends most of its time waiting for the remote (the SSH
handshake, the remote's login shell for the command channel: ~0.17 s here) and most of the rest
importing (~0.18 s). Only what connecting needs (the config, asyncssh) imports first; the pass's own
modules (the state DB, the transfer machinery) import while the handshake and the shell go on. The
thread holds the GIL in short slices (`SWITCH_INTERVAL`), so the connection's few wake-ups are not held
back behind it. docs/benchmarks.md, issue 21.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from mediasyncd.config import Config, RemoteConfig
from mediasyncd.sources import Source, open_source

SWITCH_INTERVAL = 0.0005  # seconds a thread runs before the GIL is offered (Python's default: 0.005)

Opening = dict[str, "asyncio.Task[Source]"]


async def sync_pass(
    config: Config, remotes: Sequence[RemoteConfig], *, show_progress: bool, whole_process: bool
) -> int:
    """`sync_once` with each remote's connection opened from the start. `whole_process`: the GC is off
    (launch.entry) until the pass's modules have imported; they are then frozen out of it, and it is
    turned on."""
    opening: Opening = {
        r.name: asyncio.create_task(open_source(r, config.daemon.state_dir, config.transfer)) for r in remotes
    }
    try:
        module = await _import_beside("mediasyncd.sync_once")
        if whole_process:
            gc.freeze()
            gc.enable()
        code: int = await module.sync_once(config, remotes, show_progress=show_progress, opening=opening)
        return code
    finally:
        await discard(opening)


async def _import_beside(name: str) -> ModuleType:
    """Import `name` on a thread while the event loop goes on."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        return await asyncio.get_running_loop().run_in_executor(None, importlib.import_module, name)
    finally:
        sys.setswitchinterval(before)


async def discard(opening: Opening) -> None:
    """Connections opened early and never taken (the pass ended before it reached them): cancelled
    while they open, closed once open, their errors dropped."""
    tasks = list(opening.values())
    opening.clear()
    for task in tasks:
        task.cancel()
    for result in await asyncio.gather(*tasks, return_exceptions=True):
        if not isinstance(result, BaseException):
            await result.close()
