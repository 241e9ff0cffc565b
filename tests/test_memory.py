"""The daemon's allocator settings: few malloc arenas however many threads allocate, and freed heap pages
handed back (mediasyncd/memory.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from mediasyncd.memory import HeapTrim

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
maps = []
for line in open("/proc/self/maps"):
    fields = line.split()
    lo, hi = (int(x, 16) for x in fields[0].split("-"))
    maps.append((lo, hi, fields[1], len(fields) == 5))
heaps = 0
for (lo, hi, perms, anon), (lo2, hi2, perms2, anon2) in zip(maps, maps[1:]):
    # a thread arena's heap: anonymous, at a 64 MiB boundary, its unused rest reserved right after it up
    # to the next boundary (a thread stack that happens to start on a boundary has no such rest)
    if lo % (64 << 20) == 0 and perms == "rw-p" and anon and lo2 == hi and perms2 == "---p" and anon2:
        heaps += hi2 == lo + (64 << 20)
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


TRIM_PROBE = """
import sys
from mediasyncd.memory import trim_heap
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS:")) >> 10
blocks = [bytearray(4000) for _ in range(50_000)]  # ~200 MB from the heap (over pymalloc's 512 B)
pin = bytearray(4000)  # a live block above them: free() alone cannot give the pages back
del blocks
before = rss()
took = trim_heap() if sys.argv[1] == "trim" else None
print(before, rss(), took)
"""


def test_trim_hands_freed_heap_pages_back() -> None:
    """After a peak, freed blocks below a live one stay resident until `trim_heap` (what HeapTrim runs
    every half minute in the daemon): ~200 MB back here."""

    def probe(mode: str) -> tuple[int, int]:
        out = subprocess.run(
            [sys.executable, "-c", TRIM_PROBE, mode], capture_output=True, text=True, timeout=60, check=True
        )
        before, after, _ = out.stdout.split()
        return int(before), int(after)

    before, after = probe("keep")
    assert before >= 150 and after >= 150  # without a trim the pages stay
    before, after = probe("trim")
    assert before - after >= 150


async def test_the_heap_trim_service_trims_on_its_interval() -> None:
    service = HeapTrim(every=0.02)
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(10):
            while service.trims < 3:  # noqa: ASYNC110 - counts the service's own rounds
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
