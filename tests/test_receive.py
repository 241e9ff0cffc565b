"""How received SSH bytes reach asyncssh: in slices of one OpenSSH data packet, unchanged and in order."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import cast

import asyncssh
import pytest

from mediasyncd.sources.ssh.connect import RECEIVE_SLICE, connect, slice_received
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
    """Through mediasyncd's connect, a 6 MB SFTP read is intact and asyncssh never gets more than a slice."""
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
