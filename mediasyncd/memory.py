"""How the daemon asks glibc's allocator to keep its memory: few malloc arenas.

glibc gives each thread that allocates an arena of its own (up to 8 per core); memory freed in one stays
in it, so a daemon whose thread pools grow one thread at a time grows a few MB with each (what the
soak in bench/faults measured). Two arenas, as `MALLOC_ARENA_MAX=2` sets them, is the usual cap for a
long-running service. An operator's own `MALLOC_ARENA_MAX` stands; elsewhere than glibc nothing happens.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap the malloc arenas at `count` (before the threads start); True when glibc took it."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_ARENA_MAX, count))
