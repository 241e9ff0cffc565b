"""Pull one remote file into its partial: pipelined SFTP reads, SHA-256 while streaming, resume, fsync."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

import asyncssh

from mediasyncd.errors import RemoteError, RemoteFileChanged, TransferError

WRITE_CHUNK = 1 << 20  # contiguous bytes handed to the writer thread at once (what a crash can lose)
SMALL_FILE = 1 << 20  # files up to this size are buffered and written in one step
RESUME_READ = 8 << 20
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


class ByteBudget:
    """Bytes in flight per remote: a transfer waits until its size fits (one may always run alone). A file
    larger than half the budget counts as half, so two big files overlap: one's start-up and tail (the
    open, the last reads in flight) hide behind the other's data, and neither crawls beside many others."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 1)
        self.used = 0
        self._changed = asyncio.Condition()

    async def acquire(self, size: int) -> int:
        want = min(max(size, 1), max(self.limit // 2, 1))
        async with self._changed:
            await self._changed.wait_for(lambda: self.used == 0 or self.used + want <= self.limit)
            self.used += want
        return want

    async def release(self, taken: int) -> None:
        async with self._changed:
            self.used -= taken
            self._changed.notify_all()


def _resume_state(partial: Path, expected_size: int) -> tuple[Any, int]:
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


def _open_partial(partial: Path, flags: int) -> int:
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
        hasher, offset = _resume_state(self.partial, self.size)
        return hasher, offset, _open_partial(self.partial, os.O_APPEND)

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
        fd = _open_partial(self.partial, os.O_TRUNC)
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
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)


async def pull(
    sftp: asyncssh.SFTPClient,
    remote_path: str,
    partial: Path,
    *,
    size: int,
    mtime: float,
    executor: Executor,
    block_size: int = 0,
    max_requests: int = 64,
    check_attrs: bool = True,
    limiter: RateLimiter | None = None,
    progress: Callable[[int], None] | None = None,
) -> str:
    """Copy `remote_path` (expected `size` and `mtime`) into `partial`; return its SHA-256 hex digest.

    Continues an existing partial. Raises RemoteFileChanged when the file is not the expected version
    (then the partial is dropped), RemoteError when the connection is lost, TransferError for other read
    failures (the partial is kept for a resume).
    """
    writer = PartialWriter(partial, size, executor)
    offset = await writer.open()
    if progress:
        progress(offset)
    try:
        try:
            f = await sftp.open(remote_path, "rb", block_size=block_size or -1, max_requests=max_requests)
        except asyncssh.SFTPNoSuchFile:
            raise RemoteFileChanged(f"{remote_path}: vanished before transfer") from None
        try:
            done = await _stream(f, offset, size, writer, limiter, progress)
            if check_attrs:
                attrs = await f.stat()
                if attrs.size != size or (attrs.mtime is not None and int(attrs.mtime) != int(mtime)):
                    raise RemoteFileChanged(f"{remote_path}: changed during transfer")
        finally:
            close = asyncio.ensure_future(f.close())  # not awaited: saves a round trip per file
            close.add_done_callback(_ignore_result)
        if done != size:
            raise RemoteFileChanged(f"{remote_path}: size changed during transfer ({done} of {size} bytes)")
    except RemoteFileChanged:
        await writer.abort(drop=True)
        raise
    except (asyncssh.DisconnectError, asyncssh.SFTPConnectionLost, ConnectionError) as exc:
        await writer.abort(drop=False)
        raise RemoteError(f"connection lost while reading {remote_path}: {exc}") from None
    except (asyncssh.Error, OSError) as exc:
        await writer.abort(drop=False)
        raise TransferError(f"{remote_path}: {getattr(exc, 'reason', None) or exc}") from None
    except BaseException:
        await writer.abort(drop=False)
        raise
    return await writer.finish()


async def _stream(
    f: asyncssh.SFTPClientFile,
    offset: int,
    size: int,
    writer: PartialWriter,
    limiter: RateLimiter | None,
    progress: Callable[[int], None] | None,
) -> int:
    """Hand blocks to the writer in offset order (they may arrive out of order); returns bytes held."""
    waiting: dict[int, bytes] = {}
    next_offset = offset
    received = offset  # what progress shows: blocks may arrive (and be written) out of order
    ready: list[bytes] = []
    ready_bytes = 0
    if size > offset:
        async for block_offset, data in await f.read_parallel(size - offset, offset):
            if limiter:
                await limiter.consume(len(data))
            waiting[block_offset] = data
            received += len(data)
            while next_offset in waiting:
                chunk = waiting.pop(next_offset)
                if not chunk:
                    break
                ready.append(chunk)
                ready_bytes += len(chunk)
                next_offset += len(chunk)
            if ready_bytes >= WRITE_CHUNK:
                await writer.write(ready)
                ready, ready_bytes = [], 0
            if progress:
                progress(received)
    if ready:
        await writer.write(ready)
    return next_offset


def _ignore_result(task: asyncio.Future[None]) -> None:
    if not task.cancelled():
        task.exception()
