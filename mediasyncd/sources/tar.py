"""Many small files in one stream: `tar` on the remote, read member by member into partials.

Over SFTP every file costs round trips (open, read, close) and several SSH packets; for ~100 KB images
that, not the link, sets the pace (FIELD_NOTES 2). A batch instead runs one GNU `tar -c` on the source
(over an exec channel, for SSH: sources/ssh/tar_shells.py) with the file list and streams the archive back; each member is written to its own
partial and hashed on the way, then verified against the remote's hash and landed like any other file.
What tar could not send (vanished, changed type, unreadable) is simply missing from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import queue
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mediasyncd.errors import LibraryFull, TransferError
from mediasyncd.sources.receive import DRAIN_READ, LOCAL_FULL, RateLimiter
from mediasyncd.sources.tar_reader import Chunks, TarFormatError, archive_end, members

PIECE = 256 << 10  # a read is queued for the writer thread in pieces of this size (views, not copies)


@dataclass(frozen=True)
class Member:
    rel: str
    size: int
    mtime: float
    sha256: str


def _unpack(
    chunks: Chunks,
    wanted: dict[str, Path],
    done: Callable[[Member], None],
    sizes: dict[str, int] | None = None,
    exact: bool = False,
) -> int | None:
    """Thread: write each wanted regular member to its partial (hashed on the way); report each one.
    Whatever happens, the stream is read to its end so that the event loop never waits on a full queue.
    `exact`: the stream goes on after the archive (a shell that stays for the next one): read exactly to
    the archive's end and return that length (None when it did not end cleanly); never wait for more."""
    try:
        _members(chunks, wanted, done, sizes)
        if exact and chunks.zero_at is not None:
            with contextlib.suppress(TarFormatError):  # its padding missing: not reusable, as told below
                chunks.skip(archive_end(chunks.zero_at) - chunks.consumed)
                return chunks.consumed
        return None
    finally:
        if exact:
            chunks.discard_queued()  # room for a chunk the event loop may be handing over right now
        else:
            chunks.drain()


def _members(
    chunks: Chunks,
    wanted: dict[str, Path],
    done: Callable[[Member], None],
    sizes: dict[str, int] | None = None,
) -> None:
    """Only a member named exactly as requested, a regular file, of the listed size (where `sizes` says)
    is written, and only to its own partial: whatever else a hostile archive holds (`../` names, links,
    devices, a huge member) is read past, never extracted. Each name is taken once."""
    made: set[Path] = set()  # partial folders made by this stream: one mkdir each, not one per member
    for header in members(chunks):
        partial = wanted.pop(header.name, None)
        if partial is None or (sizes is not None and sizes.get(header.name) != header.size):
            continue
        if partial.parent not in made:
            partial.parent.mkdir(parents=True, exist_ok=True)
            made.add(partial.parent)
        digest = hashlib.sha256()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            for piece in chunks.pieces(header.size):
                digest.update(piece)
                while piece:  # made durable for the whole batch before landing
                    piece = piece[os.write(fd, piece) :]
        finally:
            os.close(fd)
        done(Member(header.name, header.size, header.mtime, digest.hexdigest()))


def _resolve(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)


class ByteStream(Protocol):
    """What a transport hands over: the archive's bytes as they arrive (b"" at the end)."""

    async def read(self, n: int = -1) -> bytes: ...


async def unpack_stream(
    stream: ByteStream,
    root: str,
    partials: dict[str, Path],
    *,
    executor: Executor,
    on_member: Callable[[Member], None],
    progress: Callable[[int], None] | None = None,
    sizes: dict[str, int] | None = None,
    exact: bool = False,
    limiter: RateLimiter | None = None,
) -> bool:
    """Unpack the archive `stream` delivers into the partials `partials` names (relative to `root`);
    `on_member` is called on the event loop for each one received. The transport maps its own read
    errors; an archive that cannot be read after some bytes arrived is a TransferError.
    `exact`: the stream does not end with the archive (a reused shell); reading stops at the archive's
    end. True when exactly the archive was read, to its last record, and nothing after it. `limiter`
    paces the reads (`bwlimit`): SSH's window then holds the remote's tar back."""
    loop = asyncio.get_running_loop()
    chunks = Chunks()

    def done(member: Member) -> None:
        loop.call_soon_threadsafe(on_member, member)

    async def room() -> None:
        woken = loop.create_future()
        if chunks.when_room(lambda: loop.call_soon_threadsafe(_resolve, woken)):
            await woken

    unpacking = loop.run_in_executor(executor, _unpack, chunks, dict(partials), done, sizes, exact)
    received = 0

    async def feed() -> None:
        nonlocal received
        while chunk := await stream.read(DRAIN_READ):
            received += len(chunk)
            if limiter:
                await limiter.consume(len(chunk))
            view = memoryview(chunk)
            for start in range(0, len(view), PIECE):
                piece = view[start : start + PIECE]
                while True:
                    try:
                        chunks.queue.put_nowait(piece)
                        break
                    except queue.Full:  # the writer thread is behind: wait for it without blocking the loop
                        await room()
            if progress:
                progress(received)

    feeding = asyncio.ensure_future(feed())
    if exact:  # the thread ends at the archive's end, while a read may wait for bytes that never come
        unpacking.add_done_callback(lambda _: feeding.cancel())
    cancelled = False
    try:
        await feeding
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not (exact and unpacking.done()) or (task is not None and task.cancelling()):
            cancelled = True
            raise
    finally:
        if not feeding.done():
            feeding.cancel()
        if not exact or not unpacking.done():  # exact: the stream ended (or broke) before the archive
            await loop.run_in_executor(None, chunks.queue.put, None)
        try:
            end = await unpacking
        except (TarFormatError, OSError) as exc:
            if cancelled:  # the cancel goes on: raised here, an error would take its place and lose it
                end = None
            elif isinstance(exc, OSError) and exc.errno in LOCAL_FULL:
                raise LibraryFull(f"library disk full while unpacking a tar stream: {exc.strerror}") from None
            elif received:
                raise TransferError(f"tar stream from {root} unreadable: {exc}") from None
            else:
                end = None
    return end is not None and end == received
