"""Many small files in one stream: `tar` on the remote, read member by member into partials.

Over SFTP every file costs round trips (open, read, close) and several SSH packets; for ~100 KB images
that, not the link, sets the pace (FIELD_NOTES 2). A batch instead runs one GNU `tar -c` over an exec
channel with the file list on stdin and streams the archive back; each member is written to its own
partial and hashed on the way, then verified against the remote's hash and landed like any other file.
What tar could not send (vanished, changed type, unreadable) is simply missing from the stream.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import queue
import shlex
import tarfile
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from mediasyncd.errors import RemoteError, TransferError

READ = 256 << 10
MAX_QUEUED = 64  # chunks waiting for the writer thread before the reader pauses


def tar_command(root: str) -> str:
    """GNU tar reading a NUL-separated list of paths relative to `root` from stdin.

    --hard-dereference: a hard-linked second name still carries its data; --no-recursion: only the
    listed files; symlinks are archived as links (never followed) and then skipped by the reader."""
    return (
        f"exec tar -cf - --format=gnu --null --no-recursion --hard-dereference -C {shlex.quote(root)} -T - "
        "2>/dev/null"
    )


@dataclass(frozen=True)
class Member:
    rel: str
    size: int
    mtime: float
    sha256: str


class _ChunkReader:
    """A blocking file-like object over chunks that the event loop hands to a thread."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=MAX_QUEUED)
        self._buffer = bytearray()
        self._pos = 0
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n < 0 or len(self._buffer) - self._pos < n):
            chunk = self.chunks.get()
            if chunk is None:
                self._eof = True
                continue
            if self._pos:
                del self._buffer[: self._pos]
                self._pos = 0
            self._buffer += chunk
        end = len(self._buffer) if n < 0 else min(len(self._buffer), self._pos + n)
        data = bytes(self._buffer[self._pos : end])
        self._pos = end
        return data


def _unpack(
    reader: _ChunkReader,
    wanted: dict[str, Path],
    done: Callable[[Member], None],
) -> None:
    """Thread: write each wanted regular member to its partial (hashed on the way); report each one.
    Whatever happens, the stream is read to its end so that the event loop never waits on a full queue."""
    try:
        _members(reader, wanted, done)
    finally:
        reader.read()


def _members(reader: _ChunkReader, wanted: dict[str, Path], done: Callable[[Member], None]) -> None:
    with tarfile.open(fileobj=reader, mode="r|") as archive:  # type: ignore[call-overload]
        for info in archive:
            partial = wanted.get(info.name)
            if partial is None or not info.isreg():
                continue
            source = archive.extractfile(info)
            if source is None:
                continue
            partial.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                while chunk := source.read(READ):
                    digest.update(chunk)
                    os.write(fd, chunk)  # made durable for the whole batch before landing
            finally:
                os.close(fd)
            done(Member(info.name, info.size, info.mtime, digest.hexdigest()))


async def pull_batch(
    conn: asyncssh.SSHClientConnection,
    root: str,
    partials: dict[str, Path],
    *,
    executor: Executor,
    on_member: Callable[[Member], None],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Stream the files `partials` names (relative to `root`) into their partials; `on_member` is called
    on the event loop for each one received. Raises RemoteError when the stream cannot run at all."""
    loop = asyncio.get_running_loop()
    try:
        process = await conn.create_process(tar_command(root), encoding=None)
    except (asyncssh.Error, OSError) as exc:
        raise RemoteError(f"tar stream unavailable: {exc}") from None
    reader = _ChunkReader()

    def done(member: Member) -> None:
        loop.call_soon_threadsafe(on_member, member)

    unpacking = loop.run_in_executor(executor, _unpack, reader, partials, done)
    received = 0
    try:
        process.stdin.write(b"".join(rel.encode() + b"\0" for rel in partials))
        process.stdin.write_eof()
        while chunk := await process.stdout.read(READ):
            received += len(chunk)
            try:
                reader.chunks.put_nowait(chunk)
            except queue.Full:  # the writer thread is behind: wait for it without blocking the loop
                await loop.run_in_executor(None, reader.chunks.put, chunk)
            if progress:
                progress(received)
    except (asyncssh.Error, OSError, BrokenPipeError) as exc:
        raise RemoteError(f"tar stream broke: {exc}") from None
    finally:
        await loop.run_in_executor(None, reader.chunks.put, None)
        try:
            await unpacking
        except (tarfile.TarError, OSError, EOFError) as exc:
            if received:
                raise TransferError(f"tar stream from {root} unreadable: {exc}") from None
        finally:
            process.close()


def batches(rows: Sequence[tuple[str, int]], max_files: int, max_bytes: int) -> list[list[int]]:
    """Split (root, size) items, kept in order, into index groups: one root each, bounded in count and
    bytes (an item larger than max_bytes still forms a batch of its own)."""
    out: list[list[int]] = []
    current: list[int] = []
    current_root: str | None = None
    current_bytes = 0
    for i, (root, size) in enumerate(rows):
        if current and (
            root != current_root or len(current) >= max_files or current_bytes + size > max_bytes
        ):
            out.append(current)
            current, current_bytes = [], 0
        current.append(i)
        current_root = root
        current_bytes += size
    if current:
        out.append(current)
    return out
