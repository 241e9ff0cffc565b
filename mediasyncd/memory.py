"""How the daemon asks glibc's allocator to keep its memory small: few malloc arenas, and free pages
handed back to the system.

glibc gives each thread that allocates an arena of its own (up to 8 per core); memory freed in one stays
in it, so a daemon whose thread pools grow one thread at a time grows a few MB with each (what the
soak in bench/faults measured). Two arenas, as `MALLOC_ARENA_MAX=2` sets them, is the usual cap for a
long-running service. An operator's own `MALLOC_ARENA_MAX` stands; elsewhere than glibc nothing happens.

glibc's `free` gives memory back to the system only from the top of the heap: after a peak (50 remotes
listed at once, a backlog of 100,000 files) the freed pages below a live block stay resident. `HeapTrim`
asks `malloc_trim` to release them every half minute (measured: 450 → 265 MB after such a backlog; a
trim takes 1–20 ms, in a thread).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediasyncd.config import Config

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
TRIM_EVERY = 30.0  # seconds


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap the malloc arenas at `count` (before the threads start); True when glibc took it."""
    libc = _glibc()
    if os.environ.get("MALLOC_ARENA_MAX") or libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, count))


def trim_heap() -> bool:
    """Hand the heap's free pages back to the system; True when glibc released any."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


class HeapTrim:
    """A daemon service (wiring.Service): `trim_heap` every `every` seconds, in a thread."""

    def __init__(self, every: float = TRIM_EVERY) -> None:
        self.every = every
        self.trims = 0

    async def run(self) -> None:
        if _glibc() is None:
            return
        while True:
            await asyncio.sleep(self.every)
            await asyncio.to_thread(trim_heap)
            self.trims += 1

    def reload(self, config: Config) -> None:
        """Nothing in the config concerns it."""
