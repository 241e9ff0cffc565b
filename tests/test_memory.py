"""The daemon's allocator setting: few malloc arenas however many threads allocate (mediasyncd/memory.py)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys, threading
from mediasyncd.memory import limit_malloc_arenas
took = limit_malloc_arenas() if sys.argv[1] == "limit" else None
held, ready, done = [], threading.Barrier(9), threading.Event()
def work():
    held.append([bytearray(700) for _ in range(2000)])  # small blocks: from the thread's arena
    ready.wait()
    done.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
ready.wait()
heaps = 0
for line in open("/proc/self/maps"):
    start, perms = line.split()[0].split("-")[0], line.split()[1]
    if int(start, 16) % (64 << 20) == 0 and perms == "rw-p" and len(line.split()) == 5:
        heaps += 1  # a thread arena: a heap at a 64 MiB boundary, anonymous
done.set()
print(took, heaps)
"""


def arenas(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True, text=True, timeout=60, check=True, env=env,
    )  # fmt: skip
    took, heaps = out.stdout.split()
    return took, int(heaps)


def test_eight_allocating_threads_share_at_most_one_thread_arena() -> None:
    """Without the cap glibc gives the threads arenas of their own; with it, the main arena and at most
    one more serve them all."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert arenas("default", env)[1] >= 3
    took, heaps = arenas("limit", env)
    assert took == "True" and heaps <= 1


def test_the_operators_own_setting_stands() -> None:
    """MALLOC_ARENA_MAX in the environment (e.g. the systemd unit's) is left as it is."""
    assert arenas("limit", os.environ | {"MALLOC_ARENA_MAX": "4"})[0] == "False"
