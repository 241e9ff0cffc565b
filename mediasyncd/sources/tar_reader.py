"""Reading a GNU tar stream member by member, in the thread that writes the partials, without tarfile.

tarfile's stream mode copies every byte three or four times on its way (its own buffer, joins, slices)
and runs a stack of Python calls per read; for 100 KB files that was most of the unpacking thread's time,
and the thread held the GIL the event loop needed to receive the next bytes (docs/benchmarks.md, issue 21
third pass). Here each member's bytes go from the chunks the event loop handed over (memoryviews, no
copy) into the hash and the partial.

What is read, as tarfile reads it: 512-byte headers with their checksum checked, octal or base-256
numbers, GNU long names ('L'), the POSIX prefix field; a member's data padded to 512 bytes. Only regular
members ('0', '\\0', '7') are offered to the caller; links, devices, directories carry no data; pax
headers, long link names, GNU sparse members and unknown types are read past. The end is the first
all-zero block, and the archive's length is then known exactly: GNU tar writes two zero blocks and pads
the archive to whole 10240-byte records.
"""

from __future__ import annotations

import contextlib
import queue
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BLOCK = 512
RECORD = 10240  # GNU tar's default record size (blocking factor 20)
MAX_LONG_NAME = 64 << 10  # a GNU long name longer than this is not a file name: the stream is refused
MAX_QUEUED = 8  # pieces (tar.PIECE, 256 KB) waiting for the thread before the event loop waits
ROOM = MAX_QUEUED // 4  # a waiting event loop is woken once the queue is down to this many
REGULAR = frozenset({b"0", b"\0", b"7"})
NO_DATA = frozenset({b"1", b"2", b"3", b"4", b"5", b"6"})  # links, devices, directories, FIFOs
POSIX_MAGIC = b"ustar\x0000"
_SIGNED = struct.Struct("148b8x356b")


class TarFormatError(Exception):
    """The stream is not a tar archive that can be read on (a bad header, a truncated member)."""


@dataclass(frozen=True)
class Header:
    name: str
    kind: bytes
    size: int
    mtime: float


class Chunks:
    """Blocking reads over chunks that the event loop hands to a thread through `queue` (None: the end).
    Pieces are memoryviews into those chunks: nothing is copied but a header.

    The event loop puts without waiting; when the queue is full it asks, with `when_room`, to be woken
    once the thread has taken all but ROOM pieces: one wake-up per few pieces, and no thread of the
    loop's own blocked on the queue (a blocking put in an executor cost a submission per piece)."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=MAX_QUEUED)
        self._view = memoryview(b"")
        self._eof = False
        self.consumed = 0  # bytes taken so far
        self.zero_at: int | None = None  # where the archive's first zero block starts, once read
        self._room_lock = threading.Lock()
        self._on_room: Callable[[], object] | None = None

    def when_room(self, wake: Callable[[], object]) -> bool:
        """(The putting side.) Have `wake` called, from the taking thread, once the queue is down to ROOM
        pieces; False, and `wake` is not kept, when it is already."""
        with self._room_lock:
            if self.queue.qsize() <= ROOM:
                return False
            self._on_room = wake
            return True

    def _get(self) -> bytes | memoryview | None:
        chunk = self.queue.get()
        if self._on_room is not None:  # set under the lock before a waiter sleeps, read again under it
            with self._room_lock:
                wake = self._on_room if self.queue.qsize() <= ROOM else None
                if wake is not None:
                    self._on_room = None
            if wake is not None:
                wake()
        return chunk

    def _fill(self) -> bool:
        while not self._view:
            if self._eof:
                return False
            chunk = self._get()
            if chunk is None:
                self._eof = True
                return False
            self._view = memoryview(chunk)
        return True

    def pieces(self, n: int) -> Iterator[memoryview]:
        """The next `n` bytes, piece by piece; TarFormatError when the stream ends first."""
        while n:
            if not self._fill():
                raise TarFormatError("unexpected end of data")
            piece = self._view[:n]
            self._view = self._view[len(piece) :]
            n -= len(piece)
            self.consumed += len(piece)
            yield piece

    def skip(self, n: int) -> None:
        for _ in self.pieces(n):
            pass

    def block(self) -> bytes | None:
        """The next 512-byte block; None where the stream ends cleanly before it."""
        if not self._fill():
            return None
        if len(self._view) >= BLOCK:
            block = bytes(self._view[:BLOCK])
            self._view = self._view[BLOCK:]
            self.consumed += BLOCK
            return block
        return b"".join(self.pieces(BLOCK))

    def discard_queued(self) -> None:
        """Empty the queue without waiting (the stream goes on after the archive: never wait for it)."""
        with contextlib.suppress(queue.Empty):
            while True:
                self.queue.get_nowait()
        with self._room_lock:
            wake, self._on_room = self._on_room, None
        if wake is not None:
            wake()

    def drain(self) -> None:
        """Read to the end of the stream (so the event loop never waits on a full queue)."""
        while self._fill():
            self.consumed += len(self._view)
            self._view = memoryview(b"")


def padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def archive_end(zero_block_at: int) -> int:
    """The archive's length when its first zero block starts at `zero_block_at`: two zero blocks, then
    zeros up to a whole record."""
    return -(-(zero_block_at + 2 * BLOCK) // RECORD) * RECORD


def _nts(field: bytes) -> bytes:
    end = field.find(b"\0")
    return field if end < 0 else field[:end]


def _number(field: bytes) -> int:
    """A numeric header field: octal digits, or base-256 (first byte 0x80 or 0xff) as GNU tar writes
    large values."""
    if field[:1] in (b"\x80", b"\xff"):
        n = int.from_bytes(field[1:], "big")
        return n - (256 ** (len(field) - 1)) if field[0] == 0xFF else n
    try:
        return int(_nts(field).strip() or b"0", 8)
    except ValueError:
        raise TarFormatError("invalid number in a tar header") from None


def _checksum_ok(block: bytes) -> bool:
    stored = _number(block[148:156])
    unsigned = 256 + sum(block[:148]) + sum(block[156:])
    return stored == unsigned or stored == 256 + sum(_SIGNED.unpack_from(block))


def parse_header(block: bytes, long_name: bytes | None) -> Header:
    if not _checksum_ok(block):
        raise TarFormatError("bad checksum in a tar header")
    kind = block[156:157]
    name = _nts(block[:100])
    if block[257:265] == POSIX_MAGIC and kind not in (b"L", b"K", b"S"):
        prefix = _nts(block[345:500])
        if prefix:
            name = prefix + b"/" + name
    if long_name is not None:
        name = long_name
    return Header(
        name.decode("utf-8", "surrogateescape"), kind, _number(block[124:136]), float(_number(block[136:148]))
    )


def members(chunks: Chunks) -> Iterator[Header]:
    """Each regular member's header, with the stream positioned at its data: the caller reads exactly
    `size` bytes (or none: what is left is skipped). Returns at the first zero block (or a clean end of
    the stream between members), noting where that block starts (`chunks.zero_at`)."""
    long_name: bytes | None = None
    while True:
        start = chunks.consumed
        block = chunks.block()
        if block is None or block.count(0) == BLOCK:
            if block is not None:
                chunks.zero_at = start
            return
        header = parse_header(block, long_name)
        long_name = None
        data_end = chunks.consumed + padded(header.size)
        if header.kind == b"L":
            if header.size > MAX_LONG_NAME:
                raise TarFormatError("a GNU long name too long to be a file name")
            long_name = _nts(b"".join(chunks.pieces(header.size)))
        elif header.kind in REGULAR and not header.name.endswith("/"):
            yield header
        elif header.kind == b"S":
            if block[482]:  # extended sparse headers follow, each saying whether another does
                while (extension := chunks.block()) is not None and extension[504]:
                    pass
                data_end = chunks.consumed + padded(header.size)
        elif header.kind in NO_DATA:
            data_end = chunks.consumed
        left = data_end - chunks.consumed
        if left > 0:
            chunks.skip(left)
