"""Channel data of an AES-GCM connection decrypted and handed to its channel before asyncssh's parser
(sources/ssh/receive.py), against the real sshd: bytes intact whatever the read boundaries, key exchanges
mid-stream, a corrupted byte refused, other ciphers and unchecked asyncssh versions left to asyncssh."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import asyncssh
import pytest

from mediasyncd.sources.ssh import receive
from mediasyncd.sources.ssh.connect import connect
from mediasyncd.sources.ssh.receive import GcmReceiver, receive_fast
from tests.helpers import make_env
from tests.sshd import SshServer, start_sshd

GCM = "aes128-gcm@openssh.com"


@pytest.fixture
def payload(tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    data = os.urandom(6 * 1024 * 1024 + 12345)
    path = tmp_path / "remote" / "big.bin"
    path.parent.mkdir()
    path.write_bytes(data)
    yield path, data


class _Client(asyncssh.SSHClient):
    """Installs the receive path as mediasyncd's connections do; keeps what it installed."""

    def __init__(self) -> None:
        self.receiver: object = None
        self.fast = False

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.fast = receive_fast(conn)
        self.receiver = conn.data_received


async def _open(
    host: str, port: int, server: SshServer, cipher: str = GCM, **options: object
) -> tuple[asyncssh.SSHClientConnection, _Client]:
    client = _Client()
    conn, _ = await asyncssh.create_connection(
        lambda: client, host, port, username=server.user, client_keys=[str(server.client_key)],
        known_hosts=None, agent_path=None, config=[], encryption_algs=[cipher], compression_algs=None,
        **options,
    )  # fmt: skip
    return conn, client


async def _pull(
    host: str, port: int, server: SshServer, path: Path, cipher: str = GCM
) -> tuple[bytes, _Client]:
    """`cat path` over a new connection that receives as mediasyncd's do; the bytes and the client."""
    conn, client = await _open(host, port, server, cipher)
    try:
        return await _cat(conn, path), client
    finally:
        conn.close()
        await conn.wait_closed()


async def _cat(conn: asyncssh.SSHClientConnection, path: Path) -> bytes:
    proc = await conn.create_process(f"cat {path}", encoding=None)
    chunks = []
    while chunk := await proc.stdout.read(1 << 20):
        chunks.append(chunk)
    await proc.wait()
    return b"".join(chunks)


async def test_channel_data_is_decrypted_here_and_arrives_intact(
    sshd: SshServer, tmp_path: Path, payload: tuple[Path, bytes]
) -> None:
    """Through mediasyncd's connect: an exec channel's 6 MB and an SFTP read are intact, and nearly all
    of their packets went through the receive path (not asyncssh's parser)."""
    path, data = payload
    env = make_env(tmp_path, sshd)
    conn = await connect(env.config().remotes[0], env.state_dir)
    try:
        got = await _cat(conn, path)
        async with conn.start_sftp_client() as sftp, sftp.open(str(path), "rb") as f:
            read = cast(bytes, await f.read())  # binary mode; asyncssh types it AnyStr
        receiver = conn.data_received
    finally:
        conn.close()
        await conn.wait_closed()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert read == data
    assert isinstance(receiver, GcmReceiver)  # the prompt-ACK hook has left; this one stays
    assert receiver.fast_packets > 2 * len(data) // (32 << 10) * 0.9
    assert receiver.keys == 1


class _Relay:
    """A TCP relay on loopback between the client and sshd. Server-to-client bytes go out in pieces of
    the sizes `pieces` cycles through, each written alone (so the client's reads end anywhere: inside a
    packet's length field, its tag, between packets); `flip_at` flips one bit of that byte of the
    server's stream."""

    def __init__(self, port: int, pieces: list[int], flip_at: int | None = None) -> None:
        self.target = port
        self.pieces = pieces
        self.flip_at = flip_at
        self.sent = 0
        self.port = 0
        self._serving: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[_Relay]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            for task in self._serving:
                task.cancel()
            await asyncio.gather(*self._serving, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, chop=False)),
            asyncio.create_task(self._pump(up_reader, writer, chop=True)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()
                with contextlib.suppress(OSError):
                    await w.wait_closed()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, chop: bool) -> None:
        sizes = itertools.cycle(self.pieces)
        while data := await reader.read(1 << 18):
            if not chop:
                writer.write(data)
                await writer.drain()
                continue
            if self.flip_at is not None and self.sent <= self.flip_at < self.sent + len(data):
                at = self.flip_at - self.sent
                data = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
            self.sent += len(data)
            view = memoryview(data)
            while view:
                size = next(sizes)
                writer.write(bytes(view[:size]))
                view = view[size:]
                await writer.drain()
                if size < 64:
                    await asyncio.sleep(0.001)  # a small piece is read alone


async def test_reads_ending_anywhere_in_a_packet_lose_nothing(
    sshd: SshServer, payload: tuple[Path, bytes]
) -> None:
    """Reads cut inside the length field, the ciphertext, the tag and between packets: the bytes arrive
    whole and in order, through the receive path."""
    path, data = payload
    pieces = [1, 2, 3, 40_000, 5, 7, 32_813, 33_000, 16, 60_000, 4, 100_003]
    async with _Relay(sshd.port, pieces).running() as relay:
        got, client = await _pull("127.0.0.1", relay.port, sshd, path)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert isinstance(client.receiver, GcmReceiver)
    assert client.receiver.fast_packets > len(data) // (32 << 10) * 0.9


async def test_key_exchanges_mid_stream_are_asyncssh_s_and_the_new_keys_are_used(
    tmp_path: Path, payload: tuple[Path, bytes]
) -> None:
    """sshd re-keys every MiB (RekeyLimit): each key exchange goes through asyncssh's parser, and
    the data after it is decrypted here with the new key."""
    path, data = payload
    with start_sshd(tmp_path / "sshd-rekey", extra_config="RekeyLimit 1M\n") as server:
        got, client = await _pull(server.host, server.port, server, path)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    assert isinstance(client.receiver, GcmReceiver)
    assert client.receiver.keys >= 5
    assert client.receiver.fast_packets > len(data) // (32 << 10) * 0.8


async def test_a_corrupted_byte_ends_the_connection_and_nothing_after_it_is_delivered(
    sshd: SshServer, payload: tuple[Path, bytes]
) -> None:
    """A bit flipped in a data packet 3 MB into the stream fails its tag: asyncssh's parser refuses the
    packet (its MAC error), the connection ends, and what the reader got is a prefix of the file."""
    path, data = payload
    async with _Relay(sshd.port, [1 << 18], flip_at=3_000_000).running() as relay:
        conn, client = await _open("127.0.0.1", relay.port, sshd)
        got = b""
        with pytest.raises((asyncssh.Error, OSError)):
            proc = await conn.create_process(f"cat {path}", encoding=None)
            while chunk := await proc.stdout.read(1 << 20):
                got += chunk
            await proc.wait(check=True)
            await conn.wait_closed()
            raise AssertionError("the corrupted stream was accepted")
        conn.close()
    assert len(got) < 3_000_000
    assert data.startswith(got)
    assert isinstance(client.receiver, GcmReceiver) and client.receiver.fast_packets > 10


async def test_chacha20_goes_through_asyncssh_s_parser(sshd: SshServer, payload: tuple[Path, bytes]) -> None:
    """A connection that negotiated chacha20-poly1305 (encrypted length fields) is not decrypted here."""
    path, data = payload
    got, client = await _pull(sshd.host, sshd.port, sshd, path, cipher="chacha20-poly1305@openssh.com")
    assert got == data
    assert isinstance(client.receiver, GcmReceiver) and client.receiver.fast_packets == 0


async def test_an_unchecked_asyncssh_version_gets_only_the_slices(
    sshd: SshServer, payload: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another asyncssh version than the ones the fast path was checked against: asyncssh's parser
    (sliced) receives everything, and the bytes are intact."""
    monkeypatch.setattr(receive, "CHECKED", ("0.0.",))
    path, data = payload
    got, client = await _pull(sshd.host, sshd.port, sshd, path)
    assert got == data
    assert client.fast is False and not isinstance(client.receiver, GcmReceiver)


async def test_the_keepalive_waits_while_data_arrives_and_goes_out_once_the_link_is_idle(
    sshd: SshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keepalive every 0.2 s: a command printing a line every 50 ms for 1.2 s sends no keepalive (the
    timer, re-armed lazily, keeps counting from the last read), and 0.6 s of silence after it sends one."""
    fired: list[float] = []
    original = asyncssh.SSHClientConnection._keepalive_timer_callback

    def counting(self: asyncssh.SSHClientConnection) -> None:
        fired.append(asyncio.get_running_loop().time())
        original(self)

    monkeypatch.setattr(asyncssh.SSHClientConnection, "_keepalive_timer_callback", counting)
    conn, client = await _open(sshd.host, sshd.port, sshd, keepalive_interval=0.2, keepalive_count_max=3)
    try:
        result = await conn.run(
            "i=0; while [ $i -lt 24 ]; do echo $i; sleep 0.05; i=$((i+1)); done", check=True
        )
        assert str(result.stdout).split()[-1] == "23"
        assert isinstance(client.receiver, GcmReceiver) and client.receiver.fast_packets >= 20
        assert fired == []
        await asyncio.sleep(0.6)
        assert fired and not conn.is_closed()
    finally:
        conn.close()
        await conn.wait_closed()
