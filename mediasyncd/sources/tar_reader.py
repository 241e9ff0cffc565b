"""Reading a GNU tar stream member by member as its bytes arrive (pushed, not pulled), without tarfile.

tarfile's stream mode copies every byte three or four times on its way (its own buffer, joins, slices)
and runs a stack of Python calls per read; for 100 KB files that was most of the unpacking thread's time
(docs/benchmarks.md, issue 21 third pass). Here each member's bytes go from the reads the transport
handed over (memoryviews, no copy) into the member's writer. The parser is fed whole reads, so it runs
where its caller chooses (the event loop, or a thread, one read at a time: sources/tar.py) and never
waits for bytes itself.

What is read, as tarfile reads it: 512-byte headers with their checksum checked, octal or base-256
numbers, GNU long names ('L'), the POSIX prefix field; a member's data padded to 512 bytes. Only regular
members ('0', '\\0', '7') are offered to the caller; links, devices, directories carry no data; pax
headers, long link names, GNU sparse members and unknown types are read past. The end is the first
all-zero block, and the archive's length is then known exactly: GNU tar writes two zero blocks and pads
the archive to whole 10240-byte records.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

BLOCK = 512
RECORD = 10240  # GNU tar's default record size (blocking factor 20)
MAX_LONG_NAME = 64 << 10  # a GNU long name longer than this is not a file name: the stream is refused
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


class MemberWriter(Protocol):
    """Where a wanted member's data goes: `write` piece by piece (exactly its size in all), then
    `finish`; `abort` when the stream fails or stops inside it (also after a failed `write`)."""

    def write(self, piece: memoryview) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None: ...


class _At(enum.Enum):
    HEADER = enum.auto()  # the next 512-byte header block
    LONG_NAME = enum.auto()  # a GNU long name's data (the next header's name)
    SPARSE = enum.auto()  # a GNU sparse member's extension block (another follows while its flag says so)
    DATA = enum.auto()  # a wanted member's data, to its writer
    SKIP = enum.auto()  # data read past: padding, unwanted members, other types
    END = enum.auto()  # the zero blocks and the padding up to a whole record after the first one
    DONE = enum.auto()  # the archive's last byte was read; what follows is not the archive's


class TarParser:
    """`feed` it the stream's bytes in any pieces; each regular member's header goes to `open_member`,
    which returns a MemberWriter for the member's data, or None to read past it.

    What is read, as tarfile reads it (see above); the archive ends at the first all-zero block, and is
    read on to its exact length (`archive_end`), after which `done` is true and further bytes are only
    counted (`trailing`). A bad header raises TarFormatError from `feed`; `close` says whether the
    stream ended cleanly (between members or after the end) and raises TarFormatError when it ended
    inside a header or a member. A writer's own errors pass out of `feed`; `abort` stops the parser and
    aborts the writer in hand (whatever stopped the stream)."""

    def __init__(self, open_member: Callable[[Header], MemberWriter | None]) -> None:
        self._open_member = open_member
        self._at = _At.HEADER
        self._need = BLOCK  # bytes still wanted by the current step
        self._buf = bytearray()  # a header, extension block or long name being gathered
        self._after = 0  # padding to skip once the current member's data is in
        self._long_name: bytes | None = None
        self._writer: MemberWriter | None = None
        self.consumed = 0  # bytes of the archive read so far
        self.zero_at: int | None = None  # where the first zero block starts, once read
        self.trailing = 0  # bytes fed after the archive's end

    @property
    def done(self) -> bool:
        return self._at is _At.DONE

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        pos, size = 0, len(view)
        while pos < size:
            at = self._at
            if at is _At.DONE:
                self.trailing += size - pos
                return
            if at is _At.HEADER and not self._buf and size - pos >= BLOCK:  # a whole block: no gathering
                block = bytes(view[pos : pos + BLOCK])
                pos += BLOCK
                self.consumed += BLOCK
                self._header(block)
                continue
            take = min(self._need, size - pos)
            piece = view[pos : pos + take]
            pos += take
            self.consumed += take
            self._need -= take
            if at is _At.DATA:
                assert self._writer is not None
                try:
                    self._writer.write(piece)
                except BaseException:
                    self.abort()
                    raise
            elif at is not _At.SKIP and at is not _At.END:
                self._buf += piece
            if not self._need:
                self._step()

    def close(self) -> bool:
        """The stream ended: True when the whole archive was read, False when it ended cleanly between
        members (GNU tar's own end missing); TarFormatError inside a header or a member."""
        if self._at is _At.DONE:
            return True
        if self._at is _At.HEADER and not self._buf:
            return False
        if self._at is _At.END:
            return False  # the end's padding cut: the archive is whole, the stream is not reusable
        self.abort()
        raise TarFormatError("unexpected end of data")

    def abort(self) -> None:
        writer, self._writer = self._writer, None
        self._at, self._need = _At.DONE, 0
        if writer is not None:
            writer.abort()

    def _step(self) -> None:
        """The current step's bytes are all in: on to the next."""
        at = self._at
        if at is _At.HEADER:
            block, self._buf = bytes(self._buf), bytearray()
            self._header(block)
        elif at is _At.LONG_NAME:
            self._long_name, self._buf = _nts(bytes(self._buf)), bytearray()
            self._skip(self._after)
        elif at is _At.SPARSE:
            extension, self._buf = bytes(self._buf), bytearray()
            if extension[504]:
                self._need = BLOCK
            else:
                self._skip(self._after)
        elif at is _At.DATA:
            writer, self._writer = self._writer, None
            assert writer is not None
            writer.finish()
            self._skip(self._after)
        elif at is _At.SKIP:
            self._at, self._need = _At.HEADER, BLOCK
        elif at is _At.END:
            self._at = _At.DONE

    def _skip(self, n: int) -> None:
        self._at, self._need = _At.SKIP, n
        if not n:
            self._at, self._need = _At.HEADER, BLOCK

    def _header(self, block: bytes) -> None:
        if block.count(0) == BLOCK:
            self.zero_at = self.consumed - BLOCK
            self._at, self._need = _At.END, archive_end(self.zero_at) - self.consumed
            if not self._need:
                self._at = _At.DONE
            return
        header = parse_header(block, self._long_name)
        self._long_name = None
        data = padded(header.size)
        kind = header.kind
        if kind == b"L":
            if header.size > MAX_LONG_NAME:
                raise TarFormatError("a GNU long name too long to be a file name")
            self._at, self._need, self._after = _At.LONG_NAME, header.size, data - header.size
            if not self._need:
                self._step()
        elif kind in REGULAR and not header.name.endswith("/"):
            writer = self._open_member(header)
            if writer is None:
                self._skip(data)
                return
            self._writer = writer
            self._at, self._need, self._after = _At.DATA, header.size, data - header.size
            if not self._need:
                self._step()
        elif kind == b"S" and block[482]:  # extended sparse headers follow, each saying whether another does
            self._at, self._need, self._after = _At.SPARSE, BLOCK, data
        elif kind in NO_DATA:
            self._skip(0)
        else:
            self._skip(data)
