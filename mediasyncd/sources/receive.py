"""The receiving end of every source: a partial file written and hashed as bytes arrive, resumable, and
a rate limit. Transports differ in how bytes come; where they go is the same for all.

A full library disk (ENOSPC, EDQUOT) while writing is a `LibraryFull`, never a failure of the file: the
transfer waits for space and resumes from the partial.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

from mediasyncd.errors import LibraryFull

WRITE_CHUNK = 1 << 20  # contiguous bytes handed to the writer thread at once (what a crash can lose)
# A stream is read in one call for all that waits, never in small pieces. asyncssh grants the sender a
# whole new channel window (2 MiB) each time a paused channel resumes, however much it still holds: a
# reader that took 256 KB or 1 MiB per call behind a slower disk resumed it once per call and let tens of
# MB pile up in this process (MANY on loopback: 8-24 MB in paused channels at the peak; behind a slow
# disk, 23 MiB of a 40 MiB file over `cat`, 34 MiB of a 40 MiB tar stream). One read of more than two
# windows empties the stream and the channel, so about two windows wait per stream at most (the same
# tests: ~10 MiB; tests/sources/test_ssh_stream.py, test_ssh_tar_shells.py).
DRAIN_READ = 8 << 20
SMALL_FILE = 1 << 20  # files up to this size are buffered and written in one step
RESUME_READ = 8 << 20
LOCAL_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
T = TypeVar("T")


class RateLimiter:
    """Token bucket shared by the transfers of one remote; `rate` bytes per second, 0 = unlimited."""

    def __init__(self, rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._allowance = float(rate)
        self._last = clock()
        self._lock = asyncio.Lock()

    async def consume(self, n: int) -> None:
        if self.rate <= 0:
            return
        async with self._lock:
            now = self._clock()
            self._allowance = min(float(self.rate), self._allowance + (now - self._last) * self.rate)
            self._last = now
            self._allowance -= n
            if self._allowance < 0:
                await asyncio.sleep(-self._allowance / self.rate)


def resume_state(partial: Path, expected_size: int) -> tuple[Any, int]:
    """Hash what an interrupted transfer left; start over if the partial cannot be right."""
    hasher = hashlib.sha256()
    try:
        size = partial.stat().st_size
    except FileNotFoundError:
        return hasher, 0
    if size > expected_size:
        partial.unlink()
        return hasher, 0
    with partial.open("rb") as fh:
        while chunk := fh.read(RESUME_READ):
            hasher.update(chunk)
    return hasher, size


def open_partial(partial: Path, flags: int) -> int:
    partial.parent.mkdir(parents=True, exist_ok=True)
    return os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | flags, 0o600)


def _write(fd: int, hasher: Any, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)
        view = memoryview(chunk)
        while view:
            written = os.write(fd, view)
            view = view[written:]


def _finish(fd: int) -> None:
    """Close a partial. Its bytes are made durable in one call for a whole batch before landing
    (landing.sync_filesystem), not with an fsync per file."""
    os.close(fd)


class PartialWriter:
    """Where pulled bytes go. A large file streams into its partial (resuming one that a previous attempt
    left); a small file is buffered and written and hashed in one step at the end."""

    def __init__(self, partial: Path, size: int, executor: Executor) -> None:
        self.partial = partial
        self.size = size
        self.executor = executor
        self.small = size <= SMALL_FILE
        self.hasher: Any = hashlib.sha256()
        self.fd: int | None = None
        self.buffer: list[bytes] = []

    async def open(self) -> int:
        """Prepare; return the offset to continue from."""
        if self.small:
            return 0
        self.hasher, offset, self.fd = await self._run(self._prepare)
        return offset

    def _prepare(self) -> tuple[Any, int, int]:
        hasher, offset = resume_state(self.partial, self.size)
        return hasher, offset, open_partial(self.partial, os.O_APPEND)

    async def write(self, chunks: list[bytes]) -> None:
        if self.small:
            self.buffer.extend(chunks)
        else:
            assert self.fd is not None
            await self._run(_write, self.fd, self.hasher, chunks)

    async def finish(self) -> str:
        """Finish the partial; return the SHA-256 of all its bytes."""
        if self.small:
            await self._run(self._write_whole)
        else:
            fd, self.fd = self.fd, None
            assert fd is not None
            await self._run(_finish, fd)
        digest: str = self.hasher.hexdigest()
        return digest

    def _write_whole(self) -> None:
        fd = open_partial(self.partial, os.O_TRUNC)
        try:
            _write(fd, self.hasher, self.buffer)
        finally:
            _finish(fd)

    async def abort(self, *, drop: bool) -> None:
        """Close after a failure; `drop` also removes the partial (the remote file is not that version)."""
        fd, self.fd = self.fd, None
        if fd is not None:
            await self._run(_finish, fd)
        if drop:
            await self._run(lambda: self.partial.unlink(missing_ok=True))

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
        except OSError as exc:
            if exc.errno in LOCAL_FULL:
                raise LibraryFull(f"library disk full writing {self.partial.name}: {exc.strerror}") from None
            raise
