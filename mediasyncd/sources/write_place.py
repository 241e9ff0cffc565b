"""Where blocking work on the library runs: on the event loop, or in a thread. A tar stream's partials
(sources/tar.py) and landing's plans and renames (transfer/verify.py) ask here; flushes never run on
the loop.

A tar stream of small files costs a few system calls per member (open, write, close) and a hash. Made
in a thread, each of them hands the GIL to the event loop, busy receiving, and takes it back: two
context switches a call. Measured on loopback (`python -m bench.ssh_floor`, 20,000 files of 100 KB):
~120,000 context switches, ~9.3 CPU-s and 8.3 s for the least a pull does, against 265 switches,
~6 CPU-s and 6.2 s with the same work on the event loop (docs/benchmarks.md, twelfth pass). So where
the library is on a local filesystem, which takes a write into its page cache in microseconds, the
partials are written on the event loop. Network and FUSE filesystems (NFS, SMB, sshfs: a write can wait
for the network) and removable media (vfat, exfat, NTFS: a slow stick throttles its writers) keep the
thread; so does any device where one step on the loop took longer than STALL (a disk that fell behind:
its writer is held until writeback catches up), from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import TypeVar

import structlog

T = TypeVar("T")

# Filesystems on local block devices or in memory, where a write lands in the page cache.
LOCAL_FS = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "zfs", "bcachefs", "jfs", "reiserfs", "nilfs2",
     "tmpfs", "ramfs", "overlay"}
)  # fmt: skip
# Seconds one step on the event loop may take before the device's work goes to a thread. A step is a
# read's worth of members (at most a few MB) or 256 renames: ~10 ms here. Linux pauses a writer that has
# outrun its disk's writeback for up to 200 ms at a time.
STALL = 0.1


def fs_type(mountinfo: str, dev: int) -> str | None:
    """The type of the filesystem mounted as device `dev` (st_dev), from /proc/self/mountinfo's text."""
    key = f"{os.major(dev)}:{os.minor(dev)}"
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) > 6 and fields[2] == key and "-" in fields[6:]:
            kind = fields[fields.index("-", 6) + 1 :][:1]
            if kind:
                return kind[0]
    return None


def _mountinfo() -> str:
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


class WritePlace:
    """Per device: whether partials are written on the event loop (`on_loop`); `stalled` moves a device
    to a thread for good."""

    def __init__(self, mountinfo: Callable[[], str] = _mountinfo) -> None:
        self._mountinfo = mountinfo
        self._on_loop: dict[int, bool] = {}
        self.log = structlog.get_logger("mediasyncd.transfer")

    def device(self, path: Path) -> int | None:
        """The device of `path`, or of its nearest existing parent (a partial folder not made yet)."""
        for p in (path, *path.parents):
            try:
                return os.stat(p).st_dev
            except OSError:
                continue
        return None

    def on_loop(self, dev: int | None) -> bool:
        if dev is None:
            return False
        known = self._on_loop.get(dev)
        if known is None:
            known = self._on_loop[dev] = fs_type(self._mountinfo(), dev) in LOCAL_FS
        return known

    def stalled(self, dev: int | None, seconds: float) -> None:
        if dev is not None and self._on_loop.get(dev):
            self._on_loop[dev] = False
            self.log.info("library writes moved to a thread: one took too long", seconds=round(seconds, 3))

    async def run(self, dev: int | None, executor: Executor, step: Callable[..., T], *args: object) -> T:
        """`step(*args)`, blocking file-system work on device `dev`: on the event loop where `on_loop`
        says, timed (past STALL the device moves to a thread), else in `executor`."""
        if self.on_loop(dev):
            started = time.perf_counter()
            result = step(*args)
            if (took := time.perf_counter() - started) > STALL:
                self.stalled(dev, took)
            return result
        return await in_thread(asyncio.get_running_loop().run_in_executor(executor, step, *args))


async def in_thread(future: asyncio.Future[T]) -> T:
    """Wait for a step running in a thread; a cancel waits for the step to end first (it writes into a
    partial the caller then closes) and then goes on, whatever the step raised (a cut archive's error
    in place of the cancel would lose it: the worker carried on and its session never ended)."""
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([future])  # never raises the step's own error: the cancel goes on
        if not future.cancelled():
            future.exception()  # seen: no "never retrieved" warning
        raise


PLACE = WritePlace()
