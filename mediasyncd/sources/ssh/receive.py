"""How received SSH bytes reach asyncssh: channel data of an AES-GCM connection decrypted and handed to
its channel here, everything else to asyncssh's own parser in slices of one OpenSSH data packet.

asyncssh's parser, per 32 KiB data packet: the read appended to one bytes buffer, the packet cut off its
front, its ciphertext, tag and payload each copied again (seven copies of the packet), the keepalive
timer cancelled and armed again, and a debug line's words formatted even with packet logging off: ~19 µs
of Python per packet, 12,800 packets per 400 MiB. On a fast link that was a quarter of the event loop's
thread, which is then what limits a pull.

With AES-GCM (what mediasyncd asks for first) a packet's length is not encrypted, so here whole packets
are found in the read where they lie (memoryview, no copy), decrypted with one `AESGCM` per key (the key
and nonce asyncssh's cipher holds; its nonce is then advanced as its own decryption would), and a
channel-data packet for an open channel goes to that channel's own handler: its window checks, its
buffering and its session are asyncssh's, unchanged. Every other packet (key exchange, channel requests,
EOF, close, a packet whose tag does not match, one too long) is handed to asyncssh's parser as it came,
undecrypted, with the nonce untouched: asyncssh then does what it always does, and the fast path waits
until asyncssh's parser is idle and the connection established again (after a key exchange, the new
key). The keepalive timer is armed once per read, as asyncssh does per read.

Measured (`cat` of 400 MiB over asyncssh's exec channel from the loopback sshd, medians of 5):
0.42–0.49 → 0.30–0.31 CPU-s, 0.57–0.66 → 0.45–0.47 s (docs/benchmarks.md, thirteenth pass). This
leans on asyncssh's internals, so it runs only on the asyncssh versions it was checked against
(`CHECKED`) and only while every attribute it uses is there; otherwise everything goes the plain way
(slices only).
"""

from __future__ import annotations

from typing import Any

import asyncssh
from asyncssh.channel import SSHChannel
from asyncssh.connection import SSHConnection
from asyncssh.encryption import GCMEncryption
from asyncssh.logging import SSHLogger
from asyncssh.packet import SSHPacket
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RECEIVE_SLICE = 32 << 10  # one OpenSSH data packet (32 KiB payload) per hand-over to asyncssh
CHECKED = ("2.24.",)  # asyncssh versions whose receive internals this was checked against
MSG_CHANNEL_DATA, MSG_CHANNEL_EXTENDED_DATA = 94, 95
_TAG = 16  # the GCM tag after each packet
_LENGTH = 4  # the packet's length field, not encrypted with GCM (it is the tag's associated data)
_CONNECTION_ATTRS = (
    "_recv_encryption", "_recv_seq", "_recv_handler", "_inpbuf", "_channels", "_auth_complete",
    "_kex_complete", "_kex", "_decompressor", "_max_recv_pktlen", "_transport", "_auth_final", "_loop",
    "_keepalive_timer", "_keepalive_interval", "_keepalive_timer_callback", "_set_keepalive_timer",
)  # fmt: skip


def slice_received(conn: asyncssh.SSHClientConnection, size: int = RECEIVE_SLICE) -> None:
    """Hand asyncssh what the socket delivers in slices of `size` bytes instead of whole reads.

    asyncssh appends each socket read (asyncio reads up to 256 KiB) to one bytes buffer and cuts every
    SSH packet off its front, copying the rest of the buffer each time: for 32 KiB packets that is about
    eight copies of every byte received. Fed a packet's worth at a time (as memoryview slices, which its
    `+=` accepts), the buffer stays small. The bytes and their order are unchanged. After a fatal packet
    asyncssh drops its transport at once and leaves the rest of the read unparsed; the remaining slices
    are then not handed over either (asyncssh keeps no public sign of that moment, so this reads its
    `_transport`; should that attribute ever go, every slice is handed over, as before).

    Measured on loopback: a 100 MB SFTP read (medians of 9) 1.72 -> 1.24 CPU-s/GB and 533 -> 786 MB/s;
    `sync --once` of 5 x 200 MB (medians of 6) 4.26 -> 3.91 s. Over a 40 ms link the reads are small
    (~6 KiB) and nothing changes.
    """
    conn.data_received = _Sliced(conn, conn.data_received, size)  # type: ignore[method-assign]


class _Sliced:
    def __init__(self, conn: Any, deliver: Any, size: int) -> None:
        self._conn = conn
        self._deliver = deliver
        self._size = size

    def __call__(self, data: bytes | memoryview, datatype: asyncssh.DataType = None) -> None:
        size = self._size
        if len(data) <= size:
            self._deliver(data, datatype)
            return
        view = memoryview(data)
        for start in range(0, len(data), size):
            if getattr(self._conn, "_transport", self._conn) is None:  # a packet in an earlier slice ended it
                return
            self._deliver(view[start : start + size], datatype)


def receive_fast(conn: asyncssh.SSHClientConnection) -> bool:
    """Install the fast path on `conn` (see the module's text), with slices for the rest; False where
    this asyncssh is not one it was checked against (then only the slices)."""
    sliced = _Sliced(conn, conn.data_received, RECEIVE_SLICE)
    if not fast_path_fits(conn):
        conn.data_received = sliced  # type: ignore[method-assign]
        return False
    conn.data_received = GcmReceiver(conn, sliced)  # type: ignore[method-assign]
    return True


def fast_path_fits(conn: object) -> bool:
    version = getattr(asyncssh, "__version__", "")
    return version.startswith(CHECKED) and all(hasattr(conn, a) for a in _CONNECTION_ATTRS)


class GcmReceiver:
    """`data_received` of one connection: channel data decrypted here, the rest to asyncssh (sliced)."""

    def __init__(self, conn: Any, plain: _Sliced) -> None:
        self._conn = conn
        self._plain = plain
        self._left = b""  # the start of a packet the last read ended inside
        self._key: bytes | None = None
        self._aes: AESGCM | None = None
        self.fast_packets = 0  # channel data packets this path handled (tests, benchmarks)
        self.keys = 0  # keys it decrypted with: more than one after a key exchange
        self._last_read = 0.0
        self._lazy_keepalive()

    def __call__(self, data: bytes | memoryview, datatype: asyncssh.DataType = None) -> None:
        if not self._ready():
            left, self._left = self._left, b""
            self._plain(left + data if left else data)
            return
        conn = self._conn
        self._last_read = conn._loop.time()
        if conn._keepalive_timer is None:
            conn._set_keepalive_timer()
        view = memoryview(data)
        try:
            if self._left:
                view = self._complete(view)
                if not self._ready():  # the completed packet was asyncssh's, which now parses on
                    if conn._transport is not None:
                        self._plain(view)
                    return
            at = self._packets(view)
        except asyncssh.DisconnectError as exc:  # as asyncssh's own parser answers a bad packet
            conn._send_disconnect(exc.code, exc.reason, exc.lang)
            conn._force_close(exc)
            return
        except Exception:
            conn.internal_error()
            return
        if at < len(view) and conn._transport is not None:
            if self._ready():
                self._left = bytes(view[at:])
            else:
                self._plain(view[at:])

    def _lazy_keepalive(self) -> None:
        """asyncssh re-arms its keepalive timer at every read (a cancel and a `call_later`, ~4 µs; over a
        far link reads are ~6 KiB). Here a read only notes its time, and the timer, when it fires,
        arms itself again for the rest of the interval if anything arrived meanwhile: the keepalive is
        still sent one interval after the last read."""
        conn = self._conn
        due = conn._keepalive_timer_callback

        def keepalive_due() -> None:
            conn._keepalive_timer = None
            interval = conn._keepalive_interval
            idle = conn._loop.time() - self._last_read
            if interval and idle < interval:
                conn._keepalive_timer = conn._loop.call_later(interval - idle, keepalive_due)
                return
            due()

        conn._keepalive_timer_callback = keepalive_due

    def _complete(self, view: memoryview) -> memoryview:
        """The packet the last read ended inside, completed from the front of this one (only its own
        bytes copied) and handled; returns the rest of `view` (empty while it is still incomplete)."""
        left = self._left
        if len(left) < _LENGTH:
            take = min(_LENGTH - len(left), len(view))
            left, view = left + bytes(view[:take]), view[take:]
            if len(left) < _LENGTH:
                self._left = left
                return view
        length = int.from_bytes(left[:_LENGTH], "big")
        if length > self._conn._max_recv_pktlen:  # _packets hands it to asyncssh, which refuses it
            self._left = b""
            return memoryview(left + bytes(view))
        need = _LENGTH + length + _TAG - len(left)
        if need > len(view):
            self._left = left + bytes(view)
            return view[len(view) :]
        self._left = b""
        rest = view[need:]
        packet = memoryview(left + bytes(view[:need]))
        at = self._packets(packet)
        if at < len(packet):  # asyncssh's parser took over: it gets the rest too
            self._plain(packet[at:])
        return rest

    def _ready(self) -> bool:
        """The connection is established and idle: asyncssh's parser is between packets with nothing
        buffered, no key exchange runs, and the cipher is AES-GCM."""
        conn = self._conn
        return (
            type(conn._recv_encryption) is GCMEncryption
            and conn._auth_complete
            and conn._kex_complete
            and conn._kex is None
            and conn._decompressor is None
            and not conn._inpbuf
            and getattr(conn._recv_handler, "__func__", None) is _RECV_PKTHDR
            and conn._transport is not None
            and SSHLogger._debug_level < 3  # packet logging on: asyncssh logs each one itself
        )

    def _packets(self, view: memoryview) -> int:
        """Handle the whole packets at the front of `view`; returns where the rest starts."""
        conn = self._conn
        end, at = len(view), 0
        while end - at >= _LENGTH:
            length = int.from_bytes(view[at : at + _LENGTH], "big")
            whole = _LENGTH + length + _TAG
            if length > conn._max_recv_pktlen:  # asyncssh refuses it itself
                self._plain(view[at:])
                return end
            if end - at < whole:
                break
            handled = self._channel_data(view[at : at + whole])
            if not handled:
                self._plain(view[at : at + whole])
            at += whole
            if conn._transport is None:
                return end
            if not handled and not self._ready():
                break
        return at

    def _channel_data(self, packet: memoryview) -> bool:
        """Decrypt one packet and hand it to its channel if it is channel data; False (nothing changed,
        the nonce not advanced) for any other packet, or one whose tag does not match."""
        conn = self._conn
        if len(packet) < _LENGTH + 16 + _TAG:  # shorter than any packet with its padding: asyncssh judges
            return False
        cipher = conn._recv_encryption._cipher
        if cipher._key is not self._key:  # a new key after a key exchange
            self._key, self._aes = cipher._key, AESGCM(cipher._key)
            self.keys += 1
        assert self._aes is not None
        try:
            plain = self._aes.decrypt(cipher._iv, packet[_LENGTH:], packet[:_LENGTH])
        except InvalidTag:
            return False
        padding = plain[0]
        if len(plain) < 10 + padding or plain[1] not in (MSG_CHANNEL_DATA, MSG_CHANNEL_EXTENDED_DATA):
            return False
        channel = conn._channels.get(int.from_bytes(plain[2:6], "big"))
        if channel is None or not _plain_data_handlers(type(channel)):
            return False
        cipher._update_iv()
        seq = conn._recv_seq
        payload = SSHPacket(plain[1 : len(plain) - padding])
        payload.get_byte()
        payload.get_uint32()
        channel.process_packet(plain[1], seq, payload)  # raises as asyncssh's parser would see it raise
        conn._auth_final = True  # asyncssh's _finish_recv_packet, for a channel packet
        if conn._transport is not None:
            conn._recv_seq = (seq + 1) & 0xFFFFFFFF
        self.fast_packets += 1
        return True


_RECV_PKTHDR = SSHConnection._recv_pkthdr
_DATA_HANDLERS = (SSHChannel._process_data, SSHChannel._process_extended_data)
_plain_types: dict[type, bool] = {}


def _plain_data_handlers(cls: type) -> bool:
    """The channel class handles data with asyncssh's own (synchronous) handlers."""
    plain = _plain_types.get(cls)
    if plain is None:
        handlers = getattr(cls, "_packet_handlers", {})
        plain = _plain_types[cls] = (
            handlers.get(MSG_CHANNEL_DATA) is _DATA_HANDLERS[0]
            and handlers.get(MSG_CHANNEL_EXTENDED_DATA) is _DATA_HANDLERS[1]
        )
    return plain
