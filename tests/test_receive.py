"""How received SSH bytes reach asyncssh's own parser: in slices of one OpenSSH data packet, unchanged
and in order; and how the connection's first reads are acknowledged: at once. (Channel data decrypted
before asyncssh's parser: tests/sources/test_ssh_receive.py.)"""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path
from typing import cast

import asyncssh
import pytest

from mediasyncd.sources.ssh.connect import ack_promptly, connect
from mediasyncd.sources.ssh.receive import RECEIVE_SLICE, slice_received
from tests.helpers import make_env
from tests.sshd import SshServer


class _Recorder:
    """Stands in for the connection's receive side: records what it is handed."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def data_received(self, data: bytes, datatype: asyncssh.DataType = None) -> None:
        self.pieces.append(bytes(data))


def test_a_large_read_reaches_asyncssh_in_order_in_slices() -> None:
    """A 256 KiB socket read arrives as 32 KiB slices whose concatenation is the read."""
    conn = _Recorder()
    slice_received(conn)  # type: ignore[arg-type]
    data = os.urandom(256 * 1024 + 5)
    conn.data_received(data)
    assert b"".join(conn.pieces) == data
    assert [len(p) for p in conn.pieces] == [RECEIVE_SLICE] * 8 + [5]


def test_a_small_read_is_handed_over_whole() -> None:
    """A read no larger than a slice is passed on as it is."""
    conn = _Recorder()
    slice_received(conn)  # type: ignore[arg-type]
    conn.data_received(b"x" * RECEIVE_SLICE)
    conn.data_received(b"tail")
    assert [len(p) for p in conn.pieces] == [RECEIVE_SLICE, 4]


class _Closing(_Recorder):
    """Drops its transport, as asyncssh does on a fatal packet, after `after` pieces."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self._transport: object | None = object()

    def data_received(self, data: bytes, datatype: asyncssh.DataType = None) -> None:
        super().data_received(data, datatype)
        if len(self.pieces) >= self.after:
            self._transport = None


def test_slices_stop_once_a_packet_has_ended_the_connection() -> None:
    """After a fatal packet (asyncssh drops its transport) the rest of that read is not handed over."""
    conn = _Closing(after=2)
    slice_received(conn)  # type: ignore[arg-type]
    conn.data_received(os.urandom(5 * RECEIVE_SLICE))
    assert len(conn.pieces) == 2


async def test_a_pull_over_real_sshd_feeds_asyncssh_one_packet_at_a_time(
    sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through mediasyncd's connect, a 6 MB SFTP read is intact and asyncssh's parser never gets more than
    a slice (most of the read never reaches it: receive.py hands channel data to the channel)."""
    largest = 0
    deliver = asyncssh.SSHClientConnection.data_received

    def recording(
        self: asyncssh.SSHClientConnection, data: bytes, datatype: asyncssh.DataType = None
    ) -> None:
        nonlocal largest
        largest = max(largest, len(data))
        deliver(self, data, datatype)

    monkeypatch.setattr(asyncssh.SSHClientConnection, "data_received", recording)
    env = make_env(tmp_path, sshd)
    payload = os.urandom(6 * 1024 * 1024)
    path = env.write("big.bin", payload)
    remote = env.config().remotes[0]
    conn = await connect(remote, env.state_dir)
    try:
        async with conn.start_sftp_client() as sftp, sftp.open(str(path), "rb") as f:
            got = cast(bytes, await f.read())  # binary mode; asyncssh types it AnyStr
    finally:
        conn.close()
        await conn.wait_closed()
    assert hashlib.sha256(got).digest() == hashlib.sha256(payload).digest()
    assert 0 < largest <= RECEIVE_SLICE


class _Socket:
    """Records the options set on it; `fail` makes setsockopt raise, as on a socket without TCP."""

    family = socket.AF_INET

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        if self.fail:
            raise OSError("not a TCP socket")
        self.options.append((level, option, value))


class _Connection(_Recorder):
    def __init__(self, sock: _Socket | None) -> None:
        super().__init__()
        self.sock = sock

    def get_extra_info(self, name: str) -> object:
        return self.sock if name == "socket" else None


def test_the_first_reads_are_acknowledged_at_once_then_the_hook_leaves() -> None:
    """Each of the first `reads` reads is handed over, then TCP_QUICKACK is set; after them the
    connection's own data_received is back and no option is set any more."""
    sock = _Socket()
    conn = _Connection(sock)
    ack_promptly(conn, reads=3)  # type: ignore[arg-type]
    for piece in (b"a", b"b", b"c", b"d"):
        conn.data_received(piece)
    assert conn.pieces == [b"a", b"b", b"c", b"d"]
    assert sock.options == [(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)] * 3
    assert conn.data_received.__func__ is _Recorder.data_received  # type: ignore[attr-defined]


def test_a_socket_that_refuses_the_option_is_left_alone() -> None:
    """A refused setsockopt ends the hook after that read (its data still delivered); a connection with
    no socket (a ProxyCommand's pipe) gets no hook at all."""
    conn = _Connection(_Socket(fail=True))
    ack_promptly(conn)  # type: ignore[arg-type]
    conn.data_received(b"x")
    conn.data_received(b"y")
    assert conn.pieces == [b"x", b"y"]
    assert conn.data_received.__func__ is _Recorder.data_received  # type: ignore[attr-defined]
    bare = _Connection(None)
    ack_promptly(bare)  # type: ignore[arg-type]
    assert bare.data_received.__func__ is _Recorder.data_received  # type: ignore[attr-defined]


async def test_a_real_connection_acknowledges_its_start_then_stops(sshd: SshServer, tmp_path: Path) -> None:
    """Through mediasyncd's connect to the real sshd the hook is on the TCP socket (setsockopt accepted:
    it is still there after the login) and, once a command has sent more reads than it covers, gone."""
    env = make_env(tmp_path, sshd)
    conn = await connect(env.config().remotes[0], env.state_dir)
    try:
        assert "ack_promptly" in conn.data_received.__qualname__
        script = "i=0; while [ $i -lt 200 ]; do echo $i; sleep 0.002; i=$((i+1)); done"
        result = await conn.run(script, check=True)
        assert str(result.stdout).split()[-1] == "199"
        assert "ack_promptly" not in getattr(conn.data_received, "__qualname__", "")
    finally:
        conn.close()
        await conn.wait_closed()
