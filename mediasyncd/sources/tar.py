"""Many small files in one stream: `tar` on the remote, read member by member into partials.

Over SFTP every file costs round trips (open, read, close) and several SSH packets; for ~100 KB images
that, not the link, sets the pace (FIELD_NOTES 2). A batch instead runs one GNU `tar -c` on the source
(over an exec channel, for SSH: sources/tar_shells.py) with the file list and streams the archive
back; each member is written to its own partial and hashed on the way, then verified against the
remote's hash and landed like any other file. What tar could not send (vanished, changed type,
unreadable) is simply missing from the stream. Where the partials are written (the event loop or a
thread) is sources/write_place.py's choice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mediasyncd.errors import LibraryFull, TransferError
from mediasyncd.sources.receive import DRAIN_READ, LOCAL_FULL, RateLimiter
from mediasyncd.sources.tar_reader import Header, TarFormatError, TarParser
from mediasyncd.sources.write_place import PLACE, WritePlace


@dataclass(frozen=True)
class Member:
    rel: str
    size: int
    mtime: float
    sha256: str


class _Partial:
    """A wanted member's partial, hashed as it is written (tar_reader.MemberWriter)."""

    __slots__ = ("digest", "done", "fd", "header")

    def __init__(self, header: Header, partial: Path, done: Callable[[Member], None]) -> None:
        self.header, self.done = header, done
        self.digest = hashlib.sha256()
        self.fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)

    def write(self, piece: memoryview) -> None:
        self.digest.update(piece)
        while piece:  # made durable for the whole batch before landing
            piece = piece[os.write(self.fd, piece) :]

    def finish(self) -> None:
        fd, self.fd = self.fd, -1
        os.close(fd)
        h = self.header
        self.done(Member(h.name, h.size, h.mtime, self.digest.hexdigest()))

    def abort(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)


def _opener(
    wanted: dict[str, Path], done: Callable[[Member], None], sizes: dict[str, int] | None
) -> Callable[[Header], _Partial | None]:
    """Only a member named exactly as requested, a regular file, of the listed size (where `sizes` says)
    is written, and only to its own partial: whatever else a hostile archive holds (`../` names, links,
    devices, a huge member) is read past, never extracted. Each name is taken once."""
    made: set[Path] = set()  # partial folders made by this stream: one mkdir each, not one per member

    def open_member(header: Header) -> _Partial | None:
        partial = wanted.pop(header.name, None)
        if partial is None or (sizes is not None and sizes.get(header.name) != header.size):
            return None
        if partial.parent not in made:
            partial.parent.mkdir(parents=True, exist_ok=True)
            made.add(partial.parent)
        return _Partial(header, partial, done)

    return open_member


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
    place: WritePlace = PLACE,
) -> bool:
    """Unpack the archive `stream` delivers into the partials `partials` names (relative to `root`);
    `on_member` is called on the event loop for each one received. The transport maps its own read
    errors; an archive that cannot be read after some bytes arrived is a TransferError.
    The members are written on the event loop where `place` says the partials' filesystem takes writes
    at once, else in `executor`, one read at a time (sources/write_place.py).
    `exact`: the stream does not end with the archive (a reused shell); reading stops at the archive's
    end. True when exactly the archive was read, to its last record, and nothing after it. `limiter`
    paces the reads (`bwlimit`): SSH's window then holds the remote's tar back."""
    loop = asyncio.get_running_loop()
    first = next(iter(partials.values()), None)
    dev = place.device(first.parent) if first is not None else None
    loop_thread = threading.get_ident()

    def done(member: Member) -> None:
        if threading.get_ident() == loop_thread:
            on_member(member)
        else:
            loop.call_soon_threadsafe(on_member, member)

    parser = TarParser(_opener(dict(partials), done, sizes))

    async def feed(chunk: bytes) -> None:
        try:
            await place.run(dev, executor, parser.feed, chunk)
        except TarFormatError as exc:
            raise TransferError(f"tar stream from {root} unreadable: {exc}") from None
        except OSError as exc:  # writing a partial
            if exc.errno in LOCAL_FULL:
                raise LibraryFull(f"library disk full while unpacking a tar stream: {exc.strerror}") from None
            raise TransferError(f"tar stream from {root}: writing a partial failed: {exc}") from None

    received = 0
    try:
        while not (exact and parser.done) and (chunk := await stream.read(DRAIN_READ)):
            received += len(chunk)
            if limiter:
                await limiter.consume(len(chunk))
            await feed(chunk)
            if progress:
                progress(received)
        try:
            whole = parser.close()
        except TarFormatError as exc:
            raise TransferError(f"tar stream from {root} unreadable: {exc}") from None
    finally:
        parser.abort()  # a writer still in hand (the stream broke or was cancelled inside a member)
    return exact and whole and parser.trailing == 0
